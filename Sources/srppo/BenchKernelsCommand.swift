import ArgumentParser
import Benchmarks

/// `srppo bench kernels`: the fp32 vector kernels at SmolLM2's shapes, and the cost of a parallel region.
struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Vector kernels (RMSNorm, RoPE, SwiGLU, softmax, log-sum-exp) and parallel-region overhead.",
        discussion: """
        Times each kernel on one thread at the shapes one SmolLM2 forward over --tokens tokens uses
        (d 576, 9 heads of 64, SwiGLU 1536, vocabulary 49152), in ns per element and GB/s of data
        touched (medians), then the wall time of one Parallel region of two chunks that each spin for
        0, 2, 20 and 100 µs, at 1 and 2 threads (the ideal is the spin time itself at 2 threads).

        Example:
          srppo bench kernels --tokens 2048 --repeats 21
        """
    )

    @Option(help: "Token rows (activations are tokens × 576, SwiGLU tokens × 1536).")
    var tokens: Int = 2048

    @Option(help: "Timed runs per measurement (the median is reported).")
    var repeats: Int = 11

    func validate() throws {
        guard tokens >= 1 else { throw ValidationError("--tokens must be at least 1") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        try BenchCommand.report(KernelsBenchmark(tokens: tokens, repeats: repeats).run)
    }
}
