import Compute

/// One `y[m, n] = x[m, k] · W[n, k]ᵀ` product with random operands, timed with the project's fp32
/// `Gemm` (OpenBLAS, split by `Parallel`) and with the bf16-weight kernel.
public final class GemmProblem {
    public let m, n, k: Int
    public let a, w, c: AlignedBuffer<Float>
    private var bf16: BF16Matrix?

    public init(m: Int, n: Int, k: Int, seed: UInt64 = 1) {
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

    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    public func runFP32() {
        Gemm.multiply(m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, transB: .transposed,
                      c: c.pointer, ldc: n)
    }

    public func runBF16(kernel: Gemm.BF16Kernel = .automatic) {
        if bf16 == nil { bf16 = BF16Matrix(packing: w.pointer, rows: n, columns: k) }
        Gemm.multiply(m: m, a: a.pointer, lda: k, weights: bf16!, c: c.pointer, ldc: n, kernel: kernel)
    }
}

/// Shapes "NxK" (weights) from a comma-separated list.
public struct WeightShape: CustomStringConvertible, Equatable {
    public let n, k: Int
    public var description: String { "\(n)x\(k)" }

    public init(n: Int, k: Int) {
        self.n = n; self.k = k
    }

    public static func parseList(_ text: String) throws -> [WeightShape] {
        try text.split(separator: ",").map { item in
            guard let (n, k) = Bench.dimensions(item) else {
                throw BenchmarkError("a shape must look like 576x576 (N x K), got \"\(item)\"")
            }
            return WeightShape(n: n, k: k)
        }
    }
}
