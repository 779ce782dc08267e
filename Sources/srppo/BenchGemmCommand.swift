import ArgumentParser
import Foundation
import Tensor

/// `srppo bench gemm`: fp32 OpenBLAS sgemm against the bf16-weight kernel on the model's shapes.
struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GFLOP/s of y = x·Wᵀ: fp32 OpenBLAS sgemm vs the bf16-weight kernel.",
        discussion: """
        For each thread count and weight shape N×K, times the project's fp32 Gemm (OpenBLAS, split by
        Parallel) and the bf16-weight Gemm on the same random operands, M rows of activations. Prints
        one JSON line per shape and thread count (medians of --repeats runs) and a "layer" line: the
        seven projections of one SmolLM2 decoder layer together (two 576x576, two 192x576, two
        1536x576, one 576x1536).

        Example:
          srppo bench gemm --threads 1,2 --repeats 7
          srppo bench gemm --shapes 49152x576 --m 64 --kernel portable
        """
    )

    @Option(help: "Rows of activations (tokens).")
    var m: Int = 2048

    @Option(help: "Weight shapes N×K, comma-separated (default: SmolLM2's projections and LM head).")
    var shapes: String = "576x576,192x576,1536x576,576x1536,49152x576"

    @Option(help: "Thread counts to run, comma-separated.")
    var threads: String = "1,2"

    @Option(help: "Timed runs per measurement (the median is reported).")
    var repeats: Int = 5

    @Option(help: "bf16 kernel: automatic, avx512 or portable.")
    var kernel: String = "automatic"

    func validate() throws {
        guard m >= 1 else { throw ValidationError("--m must be at least 1") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        _ = try Bench.threadList(threads)
        _ = try WeightShape.parseList(shapes)
        _ = try bf16Kernel()
    }

    func bf16Kernel() throws -> Gemm.BF16Kernel {
        switch kernel {
        case "automatic": return .automatic
        case "portable": return .portable
        case "avx512":
            guard Gemm.BF16Kernel.avx512Available else {
                throw ValidationError("--kernel avx512: this CPU has no AVX-512 BF16")
            }
            return .avx512
        default: throw ValidationError("--kernel must be automatic, avx512 or portable, got \"\(kernel)\"")
        }
    }

    func run() throws {
        let kernel = try bf16Kernel()
        let problems = try WeightShape.parseList(shapes).map { GemmProblem(m: m, n: $0.n, k: $0.k) }
        for threadCount in try Bench.threadList(threads) {
            Parallel.threads = threadCount
            var seconds: [String: (fp32: Double, bf16: Double, flops: Double)] = [:]
            for p in problems {
                let fp32 = Bench.medianSeconds(repeats: repeats) { p.runFP32() }
                let bf16 = Bench.medianSeconds(repeats: repeats) { p.runBF16(kernel: kernel) }
                seconds["\(p.n)x\(p.k)"] = (fp32, bf16, p.flops)
                Bench.emit([
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
                Bench.emit([
                    "bench": "gemm", "shape": "layer", "m": m, "threads": threadCount, "kernel": kernel.description,
                    "openblas_core": Gemm.blasCoreName,
                    "fp32_gflops": Bench.round(flops / fp32 / 1e9), "bf16_gflops": Bench.round(flops / bf16 / 1e9),
                    "speedup": Bench.round(fp32 / bf16, 2),
                ])
            }
        }
    }
}
