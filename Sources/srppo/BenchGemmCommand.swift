import ArgumentParser
import Benchmarks

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
        _ = try settings()
    }

    func settings() throws -> GemmBenchmark.Settings {
        try BenchCommand.settings {
            let threads = try Bench.threadList(self.threads), shapes = try WeightShape.parseList(self.shapes)
            return GemmBenchmark.Settings(m: m, shapes: shapes, threads: threads, repeats: repeats,
                                          kernel: try GemmBenchmark.kernel(named: kernel))
        }
    }

    func run() throws {
        let benchmark = GemmBenchmark(try settings())
        try BenchCommand.report(benchmark.run)
    }
}
