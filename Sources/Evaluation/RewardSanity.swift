import Foundation

/// `srppo reward-sanity`'s results: the coherent reward of held-out reference answers, of another
/// prompt's reference (shuffled), and of PT and SFT samples, with how well it separates them.
public enum RewardSanity {
    public enum Kind: String, CaseIterable, Codable { case reference, shuffled, pt, sft }

    public struct Row: Codable {
        public var index: Int
        public var kind: Kind
        public var reward: Double
        public var tokens: Int
        public var ended: Bool

        public init(index: Int, kind: Kind, reward: Double, tokens: Int, ended: Bool) {
            (self.index, self.kind, self.reward, self.tokens, self.ended) = (index, kind, reward, tokens, ended)
        }
    }

    public struct Summary: Codable {
        public var kind: Kind
        public var count: Int
        public var meanReward: Double
        public var meanRewardPerToken: Double
        public var meanTokens: Double
        public var endedRate: Double

        enum CodingKeys: String, CodingKey {
            case kind, count
            case meanReward = "mean_reward", meanRewardPerToken = "mean_reward_per_token", meanTokens = "mean_tokens", endedRate = "ended_rate"
        }
    }

    public struct Separation: Codable { public var higher: Kind; public var lower: Kind; public var auroc: Double }

    public struct Results: Codable {
        public var data: String
        public var kinds: [Summary]
        public var separations: [Separation]
        public var rows: [Row]

        /// The per-kind summary as a table (`srppo reward-sanity` prints it, the report shows it).
        public static let kindHeader = ["response", "n", "mean reward", "per token", "mean tokens", "ended"]
        public var kindRows: [[String]] {
            kinds.map { k in
                [k.kind.rawValue, "\(k.count)", String(format: "%.2f", k.meanReward), String(format: "%.3f", k.meanRewardPerToken),
                 String(format: "%.1f", k.meanTokens), String(format: "%.0f%%", 100 * k.endedRate)]
            }
        }
    }

    /// Per-kind means and the AUROC of the four separations the report asks about.
    public static func summarize(_ rows: [Row], data: String) -> Results {
        func of(_ kind: Kind) -> [Row] { rows.filter { $0.kind == kind } }
        let kinds = Kind.allCases.map { kind -> Summary in
            let r = of(kind), n = Double(max(r.count, 1))
            return Summary(kind: kind, count: r.count, meanReward: r.reduce(0) { $0 + $1.reward } / n,
                           meanRewardPerToken: r.reduce(0) { $0 + $1.reward / Double(max($1.tokens, 1)) } / n,
                           meanTokens: r.reduce(0) { $0 + Double($1.tokens) } / n, endedRate: Double(r.filter(\.ended).count) / n)
        }
        let pairs: [(Kind, Kind)] = [(.reference, .shuffled), (.reference, .pt), (.sft, .pt), (.reference, .sft)]
        let separations = pairs.map { higher, lower in
            Separation(higher: higher, lower: lower, auroc: auroc(positives: of(higher).map(\.reward), negatives: of(lower).map(\.reward)))
        }
        return Results(data: data, kinds: kinds, separations: separations, rows: rows)
    }
}
