import Compute

/// `bench gemm`: GFLOP/s of fp32 OpenBLAS sgemm against the bf16-weight kernel on the same operands,
/// per weight shape and thread count, and for one SmolLM2 decoder layer's projections together.
public struct GemmBenchmark {
    public struct Settings {
        /// Rows of activations (tokens).
        public var m: Int
        public var shapes: [WeightShape]
        public var threads: [Int]
        /// Timed runs per measurement (the median is reported).
        public var repeats: Int
        public var kernel: Gemm.BF16Kernel

        public init(m: Int, shapes: [WeightShape], threads: [Int], repeats: Int, kernel: Gemm.BF16Kernel) {
            self.m = m; self.shapes = shapes; self.threads = threads; self.repeats = repeats; self.kernel = kernel
        }
    }

    public let settings: Settings

    public init(_ settings: Settings) {
        self.settings = settings
    }

    /// The bf16 kernel named on the command line; avx512 only where this CPU has it.
    public static func kernel(named name: String) throws -> Gemm.BF16Kernel {
        switch name {
        case "automatic": return .automatic
        case "portable": return .portable
        case "avx512":
            guard Gemm.BF16Kernel.avx512Available else {
                throw BenchmarkError("--kernel avx512: this CPU has no AVX-512 BF16")
            }
            return .avx512
        default: throw BenchmarkError("--kernel must be automatic, avx512 or portable, got \"\(name)\"")
        }
    }

    /// One line per shape and thread count, then a "layer" line per thread count when the shapes
    /// include all four of a decoder layer's.
    public func run(emit: Emit) throws {
        let (m, repeats, kernel) = (settings.m, settings.repeats, settings.kernel)
        let problems = settings.shapes.map { GemmProblem(m: m, n: $0.n, k: $0.k) }
        for threadCount in settings.threads {
            Parallel.threads = threadCount
            var seconds: [String: (fp32: Double, bf16: Double, flops: Double)] = [:]
            for p in problems {
                let fp32 = Bench.medianSeconds(repeats: repeats) { p.runFP32() }
                let bf16 = Bench.medianSeconds(repeats: repeats) { p.runBF16(kernel: kernel) }
                seconds["\(p.n)x\(p.k)"] = (fp32, bf16, p.flops)
                try emit([
                    "bench": "gemm", "m": p.m, "n": p.n, "k": p.k, "threads": threadCount, "openblas_core": Gemm.blasCoreName,
                    "kernel": kernel.description, "repeats": repeats,
                    "fp32_gflops": Bench.round(p.flops / fp32 / 1e9), "bf16_gflops": Bench.round(p.flops / bf16 / 1e9),
                    "speedup": Bench.round(fp32 / bf16, 2),
                ])
            }
            // One decoder layer: q and o (576x576), k and v (192x576), gate and up (1536x576), down.
            let layer: [(String, Double)] = [("576x576", 2), ("192x576", 2), ("1536x576", 2), ("576x1536", 1)]
            if layer.allSatisfy({ seconds[$0.0] != nil }) {
                let fp32 = layer.reduce(0) { $0 + seconds[$1.0]!.fp32 * $1.1 }
                let bf16 = layer.reduce(0) { $0 + seconds[$1.0]!.bf16 * $1.1 }
                let flops = layer.reduce(0) { $0 + seconds[$1.0]!.flops * $1.1 }
                try emit([
                    "bench": "gemm", "shape": "layer", "m": m, "threads": threadCount, "kernel": kernel.description,
                    "openblas_core": Gemm.blasCoreName,
                    "fp32_gflops": Bench.round(flops / fp32 / 1e9), "bf16_gflops": Bench.round(flops / bf16 / 1e9),
                    "speedup": Bench.round(fp32 / bf16, 2),
                ])
            }
        }
    }
}
