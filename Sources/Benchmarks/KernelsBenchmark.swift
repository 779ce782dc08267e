import CKernels
import Compute

/// `bench kernels`: the fp32 vector kernels on one thread at SmolLM2's shapes (ns per element, GB/s
/// of data touched), then the wall time of one `Parallel` region at 1 and 2 threads.
public struct KernelsBenchmark {
    /// Token rows (activations are tokens × 576, SwiGLU tokens × 1536).
    public let tokens: Int
    /// Timed runs per kernel (the median is reported).
    public let repeats: Int

    public init(tokens: Int, repeats: Int) {
        self.tokens = tokens
        self.repeats = repeats
    }

    public func run(emit: Emit) throws {
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

        try report("rmsnorm", elements: tokens * d, bytes: 2 * tokens * d * 4, emit) {
            srppo_rmsnorm_forward(y.pointer, nil, x.pointer, w.pointer, Int32(tokens), Int32(d), 1e-5)
        }
        try report("rmsnorm_in_place", elements: tokens * d, bytes: 2 * tokens * d * 4, emit) {
            srppo_rmsnorm_forward(y.pointer, nil, y.pointer, w.pointer, Int32(tokens), Int32(d), 1e-5)
        }
        try positions.withUnsafeBufferPointer { p in
            try report("rope_q", elements: tokens * heads * headDim, bytes: 2 * tokens * heads * headDim * 4, emit) {
                srppo_rope_forward(q.pointer, Int32(tokens), Int32(heads * headDim), Int32(heads), Int32(headDim),
                                   p.baseAddress!, cosTable.pointer, sinTable.pointer)
            }
        }
        try report("swiglu", elements: tokens * f, bytes: 3 * tokens * f * 4, emit) {
            srppo_swiglu_forward(out.pointer, gate.pointer, up.pointer, tokens * f)
        }
        try report("swiglu_in_place", elements: tokens * f, bytes: 3 * tokens * f * 4, emit) {
            out.pointer.update(from: gate.pointer, count: tokens * f)
            srppo_swiglu_forward(out.pointer, out.pointer, up.pointer, tokens * f)
        }
        let causal = sequence * (sequence + 1) / 2
        try report("softmax_causal_256", elements: causal, bytes: 2 * sequence * sequence * 4, emit) {
            scoresWork.pointer.update(from: scores.pointer, count: sequence * sequence)
            srppo_softmax_causal(scoresWork.pointer, Int32(sequence), Int32(sequence), Int32(sequence), 0, 0.125)
        }
        try report("logsumexp_49152", elements: lmRows * vocab, bytes: lmRows * vocab * 4, emit) {
            srppo_logsumexp_rows(lse.pointer, logits.pointer, Int32(lmRows), Int32(vocab), Int32(vocab))
        }
        for threads in [1, 2] {
            Parallel.threads = threads
            for spin in [0.0, 2e-6, 20e-6, 100e-6] {
                let seconds = Bench.medianSeconds(repeats: 5) {
                    for _ in 0..<200 { Parallel.forEach(2) { _ in spinFor(spin) } }
                } / 200
                try emit(["bench": "kernels", "kernel": "parallel_region_2_chunks", "threads": threads,
                          "chunk_us": spin * 1e6, "region_us": Bench.round(seconds * 1e6, 2)])
            }
        }
    }

    private func report(_ name: String, elements: Int, bytes: Int, _ emit: Emit, _ body: () -> Void) throws {
        let seconds = Bench.medianSeconds(repeats: repeats, body)
        try emit(["bench": "kernels", "kernel": name, "tokens": tokens, "threads": 1,
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
