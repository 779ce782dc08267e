import Dispatch
import Foundation

/// One JSON object a benchmark reports (a line of `srppo bench …`'s output).
public typealias ReportLine = [String: Any]

/// Receives each report line as soon as it is measured: a long benchmark shows its progress.
public typealias Emit = (ReportLine) throws -> Void

/// A benchmark setting out of range or misspelt, or a run that cannot go on; `description` is the
/// message the command prints (naming the flag it came from).
public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Clocks, medians and the list parsing the benchmarks share.
public enum Bench {
    /// Seconds on the monotonic clock (cheap enough to read around every timed run).
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// Seconds between two `DispatchTime`s (the clock of the timestamps that library types carry).
    static func seconds(from start: DispatchTime, to end: DispatchTime = .now()) -> Double {
        Double(end.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    /// Median wall time (seconds) of `repeats` runs of `body`, after `warmup` untimed runs.
    static func medianSeconds(repeats: Int, warmup: Int = 1, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<warmup { try body() }
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let start = now()
            try body()
            times.append(now() - start)
        }
        return median(times)
    }

    /// The middle value (the mean of the two middle values of an even count); `values` must not be empty.
    public static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// Parses "1,2" into thread counts (each ≥ 1).
    public static func threadList(_ text: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw BenchmarkError("--threads must be a comma-separated list of positive integers, got \"\(text)\"")
        }
        return values.map { $0! }
    }

    /// Parses "8x256" into two positive integers, the second at least `minimumSecond`; nil when it
    /// does not look like that (the caller names the flag in its message).
    static func dimensions(_ text: Substring, minimumSecond: Int = 1) -> (Int, Int)? {
        let parts = text.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] >= minimumSecond else { return nil }
        return (parts[0], parts[1])
    }

    /// Rounds to `digits` decimals for printing.
    public static func round(_ x: Double, _ digits: Int = 1) -> Double {
        let scale = Foundation.pow(10.0, Double(digits))
        return (x * scale).rounded() / scale
    }
}
