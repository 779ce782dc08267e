/// A trained model against the model it started from, on the same IFEval tasks, seed by seed: per
/// seed and pooled over seeds, the paired difference of each accuracy with a bootstrap interval
/// over tasks (`PairedComparison`).
public enum AccuracyMetric: String, CaseIterable, Codable, Sendable {
    case promptStrict = "prompt_strict", promptLoose = "prompt_loose"
    case instructionStrict = "instruction_strict", instructionLoose = "instruction_loose"

    /// One task's contribution: whether all its instructions are followed (prompt level), or how
    /// many are (instruction level).
    func value(_ verdict: IFEvalVerdict) -> Double {
        switch self {
        case .promptStrict: return verdict.followsAllStrict ? 1 : 0
        case .promptLoose: return verdict.followsAllLoose ? 1 : 0
        case .instructionStrict: return Double(verdict.strict.filter { $0 }.count)
        case .instructionLoose: return Double(verdict.loose.filter { $0 }.count)
        }
    }

    var isInstructionLevel: Bool { self == .instructionStrict || self == .instructionLoose }
}

public struct SeedComparison: Codable, Equatable, Sendable {
    public var set: String
    public var metric: AccuracyMetric
    /// Per seed (as text: JSON object keys), treated − baseline of that seed.
    public var seeds: [String: PairedComparison]
    /// Each task's difference averaged over seeds, then bootstrapped over tasks.
    public var pooled: PairedComparison

    public enum Problem: Error, CustomStringConvertible, Equatable {
        case differentTasks(set: String, seed: UInt64)
        case noVerdicts(set: String)

        public var description: String {
            switch self {
            case let .differentTasks(set, seed):
                return "set \(set), seed \(seed): the two models were evaluated on different tasks (keys or order differ)"
            case let .noVerdicts(set): return "set \(set): no IFEval verdicts to compare"
            }
        }
    }

    /// `baseline[seed]` and `treated[seed]` are the scored rows of one set, in the same task order.
    /// Instruction-level differences are scaled so their mean over tasks is the difference of the
    /// instruction-level accuracies (followed instructions over all instructions).
    public static func compare(set: String, metric: AccuracyMetric, baseline: [UInt64: [RowResult]], treated: [UInt64: [RowResult]],
                               resamples: Int = 10_000, using generator: inout some RandomNumberGenerator) throws -> SeedComparison {
        var perSeed: [String: PairedComparison] = [:]
        var pooledSums: [Double] = []
        let seeds = treated.keys.filter { baseline[$0] != nil }.sorted()
        for seed in seeds {
            let a = baseline[seed]!.filter { $0.verdict != nil }, b = treated[seed]!.filter { $0.verdict != nil }
            guard a.map(\.key) == b.map(\.key), a.map(\.prompt) == b.map(\.prompt) else { throw Problem.differentTasks(set: set, seed: seed) }
            guard !a.isEmpty else { throw Problem.noVerdicts(set: set) }
            let scale = metric.isInstructionLevel
                ? Double(a.count) / Double(a.reduce(0) { $0 + $1.verdict!.instructionIDs.count }) : 1
            let differences = zip(a, b).map { (metric.value($1.verdict!) - metric.value($0.verdict!)) * scale }
            guard pooledSums.isEmpty || pooledSums.count == differences.count else { throw Problem.differentTasks(set: set, seed: seed) }
            perSeed["\(seed)"] = PairedComparison.bootstrap(differences, resamples: resamples, using: &generator)
            pooledSums = pooledSums.isEmpty ? differences : zip(pooledSums, differences).map(+)
        }
        guard !seeds.isEmpty else { throw Problem.noVerdicts(set: set) }
        let pooled = PairedComparison.bootstrap(pooledSums.map { $0 / Double(seeds.count) }, resamples: resamples, using: &generator)
        return SeedComparison(set: set, metric: metric, seeds: perSeed, pooled: pooled)
    }
}
