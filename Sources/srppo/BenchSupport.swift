import ArgumentParser
import Foundation
import Tensor

/// Timing and the shared sgemm reference used by the `bench` subcommands.
enum Bench {
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
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

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// Parses "1,2" into thread counts (each ≥ 1).
    static func threadList(_ text: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--threads must be a comma-separated list of positive integers, got \"\(text)\"")
        }
        return values.map { $0! }
    }

    /// Rounds to `digits` decimals for printing.
    static func round(_ x: Double, _ digits: Int = 1) -> Double {
        let scale = Foundation.pow(10.0, Double(digits))
        return (x * scale).rounded() / scale
    }

    /// Prints one JSON object on a line (keys sorted).
    static func emit(_ object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        fflush(stdout)
    }
}

/// One `y[m, n] = x[m, k] · W[n, k]ᵀ` product with random operands, timed with the project's fp32
/// `Gemm` (OpenBLAS, split by `Parallel`) and with the bf16-weight kernel.
final class GemmProblem {
    let m, n, k: Int
    let a, w, c: AlignedBuffer<Float>
    private var bf16: BF16Matrix?

    init(m: Int, n: Int, k: Int, seed: UInt64 = 1) {
        self.m = m; self.n = n; self.k = k
        a = AlignedBuffer(count: m * k)
        w = AlignedBuffer(count: n * k)
        c = AlignedBuffer(count: m * n)
        var state = seed
        for buffer in [a, w] {
            for i in 0..<buffer.count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                buffer.pointer[i] = Float(Int(state >> 40) - (1 << 23)) / Float(1 << 23)
            }
        }
    }

    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    func runFP32() {
        Gemm.multiply(m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, transB: .transposed,
                      c: c.pointer, ldc: n)
    }

    func runBF16(kernel: Gemm.BF16Kernel = .automatic) {
        if bf16 == nil { bf16 = BF16Matrix(packing: w.pointer, rows: n, columns: k) }
        Gemm.multiply(m: m, a: a.pointer, lda: k, weights: bf16!, c: c.pointer, ldc: n, kernel: kernel)
    }
}

/// Shapes "NxK" (weights) from a comma-separated list.
struct WeightShape: CustomStringConvertible {
    let n, k: Int
    var description: String { "\(n)x\(k)" }

    static func parseList(_ text: String) throws -> [WeightShape] {
        try text.split(separator: ",").map { item in
            let parts = item.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
                throw ValidationError("a shape must look like 576x576 (N x K), got \"\(item)\"")
            }
            return WeightShape(n: parts[0], k: parts[1])
        }
    }
}
