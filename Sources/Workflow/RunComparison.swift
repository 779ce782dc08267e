import Evaluation
import Foundation
import ModelFiles
import Compute

/// `srppo compare`: every SRPPO policy of a pipeline folder paired, task by task, with the SFT model
/// it started from (eval/*.rows.jsonl): srppo-P-seedS with sft-seedS (or the shared sft), pooled
/// over the seeds of a placement; srppo-P-demosN with sft-demosN.
public enum RunComparison {
    /// Every SRPPO policy of the pipeline folder `folder` against its SFT start, per IFEval set and
    /// accuracy; the bootstrap's random stream starts from `seed`.
    public static func compare(folder: String, seed: UInt64) throws -> [Comparison] {
        let groups = try groups(evalFolder: (folder as NSString).appendingPathComponent("eval"))
        guard !groups.isEmpty else {
            throw PipelineError("\(folder)/eval: no srppo-P-V.rows.jsonl with a matching sft rows file (run the pipeline first)")
        }
        var generator = SeededGenerator(seed: seed)
        var comparisons: [Comparison] = []
        for group in groups {
            for set in group.sets {
                for metric in AccuracyMetric.allCases {
                    let result = try SeedComparison.compare(set: set, metric: metric, baseline: group.baseline(set), treated: group.treated(set),
                                                            using: &generator)
                    comparisons.append(Comparison(placement: group.placement, variant: group.variant, result: result))
                }
            }
        }
        return comparisons
    }

    /// One line of comparison.json.
    public struct Comparison: Codable {
        public var placement: String
        /// "seeds" (pooled over seeds) or "demosN".
        public var variant: String
        public var result: SeedComparison
    }

    /// The policies of one placement and variant, with their baselines' rows: seed → rows per set.
    struct Group {
        var placement: String
        var variant: String
        var baselineRows: [UInt64: [String: [RowResult]]] = [:]
        var treatedRows: [UInt64: [String: [RowResult]]] = [:]

        var sets: [String] { Array(Set(treatedRows.values.flatMap(\.keys))).sorted() }
        func baseline(_ set: String) -> [UInt64: [RowResult]] { baselineRows.compactMapValues { $0[set] } }
        func treated(_ set: String) -> [UInt64: [RowResult]] { treatedRows.compactMapValues { $0[set] } }
    }

    /// srppo-P-seedS pairs with sft-seedS, or with the shared sft; srppo-P-demosN with sft-demosN.
    static func groups(evalFolder: String) throws -> [Group] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: evalFolder)) ?? []).filter { $0.hasSuffix(".rows.jsonl") }
        let labels = Set(files.map { String($0.dropLast(".rows.jsonl".count)) })
        var groups: [String: Group] = [:]
        for label in labels.sorted() where label.hasPrefix("srppo-") {
            let parts = label.dropFirst("srppo-".count).split(separator: "-")
            guard parts.count >= 2 else { continue }
            let variant = String(parts.last!), placement = parts.dropLast().joined(separator: "-")
            let seed: UInt64, group: String
            if variant.hasPrefix("seed"), let s = UInt64(variant.dropFirst(4)) {
                (seed, group) = (s, "seeds")
            } else if variant.hasPrefix("demos"), Int(variant.dropFirst(5)) != nil {
                (seed, group) = (0, variant)
            } else { continue }
            guard let baseline = ["sft-\(variant)", "sft"].first(where: labels.contains) else { continue }
            let key = placement + "/" + group
            var g = groups[key] ?? Group(placement: placement, variant: group)
            g.treatedRows[seed] = try rowsBySet(evalFolder + "/\(label).rows.jsonl")
            g.baselineRows[seed] = try rowsBySet(evalFolder + "/\(baseline).rows.jsonl")
            groups[key] = g
        }
        return groups.keys.sorted().map { groups[$0]! }
    }

    static func rowsBySet(_ path: String) throws -> [String: [RowResult]] {
        var sets: [String: [RowResult]] = [:]
        for line in try JSONLines.read(path) {
            let set = try line.decode(SetName.self).set
            sets[set, default: []].append(try line.decode(RowResult.self))
        }
        return sets
    }

    private struct SetName: Decodable { var set: String }

    /// The comparison as table rows (the printed table and the report's).
    public static func rows(_ comparisons: [Comparison]) -> (header: [String], rows: [[String]]) {
        func points(_ c: PairedComparison) -> String {
            String(format: "%+.1f [%+.1f, %+.1f]", 100 * c.meanDifference, 100 * c.lower, 100 * c.upper)
        }
        let header = ["placement", "runs", "set", "metric", "per seed (points, 95% CI)", "pooled (points, 95% CI)", "verdict"]
        let rows = comparisons.map { c -> [String] in
            let seeds = c.result.seeds.keys.sorted { UInt64($0)! < UInt64($1)! }
            let perSeed = c.variant == "seeds" ? seeds.map { "\($0): " + points(c.result.seeds[$0]!) }.joined(separator: "; ") : ""
            return [c.placement, c.variant, c.result.set, c.result.metric.rawValue, perSeed, points(c.result.pooled), c.result.pooled.verdict.rawValue]
        }
        return (header, rows)
    }

    public static func table(_ comparisons: [Comparison]) -> String {
        let (header, rows) = rows(comparisons)
        var table = TextTable(header: header)
        rows.forEach { table.add($0) }
        return table.render().joined(separator: "\n") + "\n"
    }
}
