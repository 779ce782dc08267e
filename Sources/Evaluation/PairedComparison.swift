/// Two models compared on the same tasks: the mean of the per-task differences (B − A) with a
/// percentile bootstrap confidence interval over tasks, and a plain verdict from that interval.
///
/// Pairing by task removes the variation between tasks (some are hard for every model), which is
/// most of the variation on a few hundred tasks; resampling tasks asks how much the mean would move
/// on another draw of tasks like these. With several seeds, a task's difference is the mean of its
/// per-seed differences, so seed noise is inside each resampled unit.
public struct PairedComparison: Codable, Equatable, Sendable {
    public enum Verdict: String, Codable, Sendable {
        /// The whole interval is above 0: B beats A.
        case beats
        /// The interval contains 0.
        case noDifference = "no difference"
        /// The whole interval is below 0.
        case worse
    }

    public var tasks: Int
    /// Mean of B − A over tasks, in the metric's units (a fraction for accuracies).
    public var meanDifference: Double
    public var lower: Double
    public var upper: Double
    /// Of the interval [lower, upper].
    public var confidence: Double
    public var resamples: Int
    public var verdict: Verdict

    enum CodingKeys: String, CodingKey {
        case tasks, lower, upper, confidence, resamples, verdict
        case meanDifference = "mean_difference"
    }

    /// `differences[i]`: B − A on task i. `resamples` bootstrap draws of as many tasks, with
    /// replacement, from `generator` (seeded by the caller, so a report is reproducible).
    public static func bootstrap(_ differences: [Double], confidence: Double = 0.95, resamples: Int = 10_000,
                                 using generator: inout some RandomNumberGenerator) -> PairedComparison {
        precondition(!differences.isEmpty, "no tasks to compare")
        precondition(confidence > 0 && confidence < 1 && resamples > 0)
        let n = differences.count
        let mean = differences.reduce(0, +) / Double(n)
        var means = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var sum = 0.0
            for _ in 0..<n { sum += differences[Int.random(in: 0..<n, using: &generator)] }
            means[r] = sum / Double(n)
        }
        means.sort()
        let tail = (1 - confidence) / 2
        let lower = means[Int((tail * Double(resamples - 1)).rounded())]
        let upper = means[Int(((1 - tail) * Double(resamples - 1)).rounded())]
        let verdict: Verdict = lower > 0 ? .beats : upper < 0 ? .worse : .noDifference
        return PairedComparison(tasks: n, meanDifference: mean, lower: lower, upper: upper, confidence: confidence,
                                resamples: resamples, verdict: verdict)
    }
}
