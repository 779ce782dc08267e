import Transformer

/// What a model's forward costs and what the machine's sgemm reaches on the same shapes: the
/// yardstick `bench score` and `bench train` report their GFLOP/s against.
enum ForwardCost {
    /// FLOP-weighted fp32 sgemm GFLOP/s on the model's shapes: the seven projections at `rows` rows
    /// (in the proportions of one layer) and the LM head at the scored rows.
    static func sgemmReference(_ c: LlamaConfig, rows: Int, scoredRows: Int, repeats: Int) -> Double {
        let d = c.hiddenSize, f = c.intermediateSize
        let shapes: [(m: Int, n: Int, k: Int, count: Double)] = [
            (rows, c.qDim, d, 1), (rows, c.kvDim, d, 2), (rows, d, c.qDim, 1),
            (rows, f, d, 2), (rows, d, f, 1),
            (scoredRows, c.vocabSize, d, 1 / Double(c.numLayers)),
        ]
        var flops = 0.0, seconds = 0.0
        for s in shapes {
            let problem = GemmProblem(m: s.m, n: s.n, k: s.k)
            seconds += s.count * Bench.medianSeconds(repeats: repeats) { problem.runFP32() }
            flops += s.count * problem.flops
        }
        return flops / seconds / 1e9
    }

    /// Multiply-adds × 2 of one scoring forward over `sequences` × `tokens` (projections, the causal
    /// part of attention, the LM head at `scoredRows` rows). Norms, RoPE, SwiGLU and softmax are not counted.
    static func forwardFlops(_ c: LlamaConfig, sequences: Int, tokens: Int, scoredRows: Int) -> Double {
        let d = Double(c.hiddenSize), f = Double(c.intermediateSize), q = Double(c.qDim), kv = Double(c.kvDim)
        let allTokens = Double(sequences * tokens)
        let projections = 2 * allTokens * (d * (q + 2 * kv) + q * d + 3 * d * f)
        let L = Double(tokens)
        let attention = Double(sequences) * Double(c.numHeads) * 2 * 2 * Double(c.headDim) * L * (L + 1) / 2
        let lmHead = 2 * Double(scoredRows) * d * Double(c.vocabSize)
        return Double(c.numLayers) * (projections + attention) + lmHead
    }
}
