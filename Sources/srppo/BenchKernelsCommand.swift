import ArgumentParser
import CKernels
import Foundation
import Tensor

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
        Parallel.threads = 1
        let d = 576, f = 1536, heads = 9, headDim = 64, vocab = 49152, lmRows = 64, sequence = 256
        let x = filled(tokens * d, scale: 3), y = AlignedBuffer<Float>(count: tokens * d), w = filled(d, scale: 1)
        let gate = filled(tokens * f, scale: 8), up = filled(tokens * f, scale: 1), out = AlignedBuffer<Float>(count: tokens * f)
        let q = filled(tokens * heads * headDim, scale: 2)
        let half = headDim / 2
        let cosTable = filled(sequence * half, scale: 1), sinTable = filled(sequence * half, scale: 1)
        let positions = (0..<tokens).map { Int32($0 % sequence) }
        let scores = filled(sequence * sequence, scale: 10), scoresWork = AlignedBuffer<Float>(count: sequence * sequence)
        let logits = filled(lmRows * vocab, scale: 10), lse = AlignedBuffer<Float>(count: lmRows)

        report("rmsnorm", elements: tokens * d, bytes: 2 * tokens * d * 4) {
            srppo_rmsnorm_forward(y.pointer, nil, x.pointer, w.pointer, Int32(tokens), Int32(d), 1e-5)
        }
        report("rmsnorm_in_place", elements: tokens * d, bytes: 2 * tokens * d * 4) {
            srppo_rmsnorm_forward(y.pointer, nil, y.pointer, w.pointer, Int32(tokens), Int32(d), 1e-5)
        }
        positions.withUnsafeBufferPointer { p in
            report("rope_q", elements: tokens * heads * headDim, bytes: 2 * tokens * heads * headDim * 4) {
                srppo_rope_forward(q.pointer, Int32(tokens), Int32(heads * headDim), Int32(heads), Int32(headDim),
                                   p.baseAddress!, cosTable.pointer, sinTable.pointer)
            }
        }
        report("swiglu", elements: tokens * f, bytes: 3 * tokens * f * 4) {
            srppo_swiglu_forward(out.pointer, gate.pointer, up.pointer, tokens * f)
        }
        report("swiglu_in_place", elements: tokens * f, bytes: 3 * tokens * f * 4) {
            out.pointer.update(from: gate.pointer, count: tokens * f)
            srppo_swiglu_forward(out.pointer, out.pointer, up.pointer, tokens * f)
        }
        let causal = sequence * (sequence + 1) / 2
        report("softmax_causal_256", elements: causal, bytes: 2 * sequence * sequence * 4) {
            scoresWork.pointer.update(from: scores.pointer, count: sequence * sequence)
            srppo_softmax_causal(scoresWork.pointer, Int32(sequence), Int32(sequence), Int32(sequence), 0, 0.125)
        }
        report("logsumexp_49152", elements: lmRows * vocab, bytes: lmRows * vocab * 4) {
            srppo_logsumexp_rows(lse.pointer, logits.pointer, Int32(lmRows), Int32(vocab), Int32(vocab))
        }
        for threads in [1, 2] {
            Parallel.threads = threads
            for spin in [0.0, 2e-6, 20e-6, 100e-6] {
                let seconds = Bench.medianSeconds(repeats: 5) {
                    for _ in 0..<200 { Parallel.forEach(2) { _ in spinFor(spin) } }
                } / 200
                Bench.emit(["bench": "kernels", "kernel": "parallel_region_2_chunks", "threads": threads,
                            "chunk_us": spin * 1e6, "region_us": Bench.round(seconds * 1e6, 2)])
            }
        }
    }

    private func report(_ name: String, elements: Int, bytes: Int, _ body: () -> Void) {
        let seconds = Bench.medianSeconds(repeats: repeats, body)
        Bench.emit(["bench": "kernels", "kernel": name, "tokens": tokens, "threads": 1,
                    "us": Bench.round(seconds * 1e6, 1), "ns_per_element": Bench.round(seconds / Double(elements) * 1e9, 3),
                    "gb_per_s": Bench.round(Double(bytes) / seconds / 1e9, 1)])
    }

    private func filled(_ count: Int, scale: Float) -> AlignedBuffer<Float> {
        let buffer = AlignedBuffer<Float>(count: count)
        var state: UInt32 = 12345
        for i in 0..<count {
            state = state &* 1_664_525 &+ 1_013_904_223
            buffer.pointer[i] = scale * (Float(state >> 8) / Float(1 << 24) * 2 - 1)
        }
        return buffer
    }
}

private func spinFor(_ seconds: Double) {
    if seconds <= 0 { return }
    let end = Bench.now() + seconds
    while Bench.now() < end {}
}
