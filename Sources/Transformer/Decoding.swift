import CKernels
import Foundation
import Compute

/// Buffers of one decoding step for up to `rows` sequences, reused step after step.
final class DecodeBuffers {
    let rows: Int
    let x: AlignedBuffer<Float>          // [rows, d] residual stream
    let normed: AlignedBuffer<Float>     // [rows, d]
    let qkv: AlignedBuffer<Float>        // [rows, H·e + 2·G·e]
    let attention: AlignedBuffer<Float>  // [rows, H·e]
    let gateUp: AlignedBuffer<Float>     // [rows, 2f]
    let hidden: AlignedBuffer<Float>     // [rows, f]
    let logits: AlignedBuffer<Float>     // [rows, V]
    let loraInner: AlignedBuffer<Float>  // [rows, LoRA rank]

    init(config c: LlamaConfig, rows: Int, loraRank: Int) {
        self.rows = rows
        x = AlignedBuffer(count: rows * c.hiddenSize)
        normed = AlignedBuffer(count: rows * c.hiddenSize)
        qkv = AlignedBuffer(count: rows * c.qkvDim)
        attention = AlignedBuffer(count: rows * c.qDim)
        gateUp = AlignedBuffer(count: rows * 2 * c.intermediateSize)
        hidden = AlignedBuffer(count: rows * c.intermediateSize)
        logits = AlignedBuffer(count: rows * c.vocabSize)
        loraInner = AlignedBuffer(count: rows * loraRank)
    }
}

/// Decoding with a KV cache: prefill a prompt with the scoring forward, then one token per sequence
/// per step for all active sequences together.
///
/// Every matrix product of a decoding step goes through `srppo_rowdot`, whose outputs do not depend on
/// which other rows are in the call or how columns are split across threads. So a sequence's logits,
/// hence its tokens under a fixed seed, are bit-identical alone or in any batch, on any thread count.
/// (OpenBLAS rounds a row differently depending on the call's shape; padding the rows does not fix
/// that for the few rows of a decoding step.) Prefill runs per sequence like scoring, which is
/// batch-invariant already. A model on a bf16 weight image has no fp32 matrices: its prefill and
/// decoding steps multiply through the bf16 GEMM, which sums every element in the same order
/// whatever the rows and split, so the same holds.
extension LlamaModel {
    /// Runs each prompt through the decoder, writing every layer's keys and values into the prompt's
    /// cache, and leaves the logits of each prompt's next token in `logits` [prompts, V].
    func prefill(_ prompts: [[Int32]], caches: [KVCache], logits: UnsafeMutablePointer<Float>) {
        let c = config, d = c.hiddenSize
        var batch = PackedBatch(prompts.map { ScoringRequest(tokens: $0, firstScored: $0.count) })
        // The prompt's keys and values in the precision of the decoding steps.
        batch.allowsBF16 = bf16Only != nil
        let x = AlignedBuffer<Float>(count: batch.tokenCount * d)
        let a = LayerActivations(config: c, tokens: batch.tokenCount)
        batch.tokens.withUnsafeBufferPointer { embed($0, into: x.pointer, bf16: bf16Only) }
        for layer in 0..<c.numLayers {
            forwardLayer(layer, batch: batch, x: x.pointer, a: a)
            // The layer's q, k, v (after RoPE) are still in the activations.
            for (s, cache) in caches.enumerated() {
                cache.store(layer: layer, positions: 0, count: batch.lengths[s], qkv: a.qkv.pointer + batch.starts[s] * c.qkvDim,
                            ld: c.qkvDim, keyOffset: c.qDim)
            }
        }
        for (s, cache) in caches.enumerated() { cache.advance(to: batch.lengths[s]) }
        let last = AlignedBuffer<Float>(count: prompts.count * d)
        for s in 0..<prompts.count {
            (last.pointer + s * d).update(from: x.pointer + (batch.starts[s] + batch.lengths[s] - 1) * d, count: d)
        }
        outputLogits(last.pointer, rows: prompts.count, into: logits)
    }

    /// One decoding step: feeds `tokens[r]` to sequence r at its next position (the length of
    /// `caches[r]`), appends its keys and values, and leaves the next token's logits in
    /// `buffers.logits` [rows, V].
    func decodeStep(tokens: [Int32], caches: [KVCache], buffers b: DecodeBuffers) {
        let c = config
        let rows = tokens.count
        precondition(rows == caches.count && rows <= b.rows)
        let d = c.hiddenSize, f = c.intermediateSize, eps = Float(c.rmsNormEps)
        let positions = caches.map { Int32($0.length) }
        let (cosTable, sinTable) = rope.tables(covering: Int(positions.max() ?? 0) + 1)
        tokens.withUnsafeBufferPointer { embed($0, into: b.x.pointer, bf16: bf16Only) }
        for (index, layer) in layout.layers.enumerated() {
            // x += o_proj(attention(rope(q), cache + rope(k), cache + v)),  [q k v] = qkv_proj(rmsnorm(x))
            srppo_rmsnorm_forward(b.normed.pointer, nil, b.x.pointer, weights + layer.attentionNorm, Int32(rows), Int32(d), eps)
            decodeLinear(b.normed.pointer, rows: rows, inFeatures: d, group: .qkv, layer: index, outFeatures: c.qkvDim,
                         into: b.qkv.pointer, buffers: b)
            positions.withUnsafeBufferPointer { p in
                srppo_rope_forward(b.qkv.pointer, Int32(rows), Int32(c.qkvDim), Int32(c.numHeads), Int32(c.headDim),
                                   p.baseAddress, cosTable, sinTable)
                srppo_rope_forward(b.qkv.pointer + c.qDim, Int32(rows), Int32(c.qkvDim), Int32(c.numKVHeads), Int32(c.headDim),
                                   p.baseAddress, cosTable, sinTable)
            }
            attendToCache(layer: index, rows: rows, caches: caches, buffers: b)
            decodeLinear(b.attention.pointer, rows: rows, inFeatures: c.qDim, group: .o, layer: index, outFeatures: d,
                         into: b.x.pointer, accumulate: true, buffers: b)
            // x += down(silu(gate(n)) * up(n)),  n = rmsnorm(x)
            srppo_rmsnorm_forward(b.normed.pointer, nil, b.x.pointer, weights + layer.mlpNorm, Int32(rows), Int32(d), eps)
            decodeLinear(b.normed.pointer, rows: rows, inFeatures: d, group: .gateUp, layer: index, outFeatures: 2 * f,
                         into: b.gateUp.pointer, buffers: b)
            for r in 0..<rows {
                let gate = b.gateUp.pointer + r * 2 * f
                srppo_swiglu_forward(b.hidden.pointer + r * f, gate, gate + f, f)
            }
            decodeLinear(b.hidden.pointer, rows: rows, inFeatures: f, group: .down, layer: index, outFeatures: d,
                         into: b.x.pointer, accumulate: true, buffers: b)
        }
        for (r, cache) in caches.enumerated() { cache.advance(to: Int(positions[r]) + 1) }
        outputLogits(b.x.pointer, rows: rows, into: b.logits.pointer)
    }

    /// Stores each row's new key and value at its position, then attends over the cache.
    private func attendToCache(layer: Int, rows: Int, caches: [KVCache], buffers b: DecodeBuffers) {
        let c = config
        let scale = Float(1.0 / Double(c.headDim).squareRoot())
        let longest = caches.map(\.capacity).max() ?? 0
        let scores = AlignedBuffer<Float>(count: Parallel.threads * longest)
        Parallel.forEachTask(rows) { worker, r in
            let cache = caches[r], position = cache.length
            let row = b.qkv.pointer + r * c.qkvDim
            cache.store(layer: layer, positions: position, count: 1, qkv: row, ld: c.qkvDim, keyOffset: c.qDim)
            srppo_attention_decode(b.attention.pointer + r * c.qDim, row, cache.keys(layer: layer), cache.values(layer: layer),
                                   Int32(c.numHeads), Int32(c.numKVHeads), Int32(c.headDim), Int32(position + 1),
                                   Int32(cache.capacity), cache.headStride, scale, scores.pointer + worker * longest)
        }
    }

    /// y[rows, out] = x[rows, in] · Wᵀ + bias (or y += that when `accumulate`) for a layer's
    /// projection group, plus the group's LoRA adapters: every projection of a decoding step, so
    /// adapters and any other per-projection change go here once.
    func decodeLinear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, group: ProjectionGroup, layer: Int,
                      outFeatures: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false, buffers: DecodeBuffers) {
        let (weight, bias) = group.weightOffset(layout.layers[layer])
        if let bf16 = bf16Only?.matrix(group, layer: layer) {
            Gemm.multiply(m: rows, a: x, lda: inFeatures, weights: bf16, c: y, ldc: outFeatures, beta: accumulate ? 1 : 0)
        } else {
            Self.rowProduct(x, rows: rows, inFeatures: inFeatures, weights: weights + weight, outFeatures: outFeatures,
                            into: y, ldy: outFeatures, accumulate: accumulate)
        }
        if let bias {
            for r in 0..<rows { srppo_add_inplace(y + r * outFeatures, weights + bias, outFeatures) }
        }
        guard let lora = adapters else { return }
        // y[:, columns] += (α/r) · (x · Aᵀ) · Bᵀ; rank-sized products, run on this thread.
        let rank = lora.config.rank, p = lora.parameters.pointer, u = buffers.loraInner.pointer
        for adapter in lora.adapters(layer: layer, group: group) {
            srppo_rowdot(u, Int32(rank), x, Int32(inFeatures), p + adapter.a, Int32(inFeatures),
                         Int32(rows), Int32(rank), Int32(inFeatures), 1, 0)
            srppo_rowdot(y + adapter.columns.lowerBound, Int32(outFeatures), u, Int32(rank), p + adapter.b, Int32(rank),
                         Int32(rows), Int32(adapter.outFeatures), Int32(rank), lora.config.scale, 1)
        }
    }

    /// Final norm and LM head of `rows` last-layer hidden states: logits [rows, V].
    func outputLogits(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        let d = config.hiddenSize
        let normed = AlignedBuffer<Float>(count: rows * d)
        srppo_rmsnorm_forward(normed.pointer, nil, hidden, weights + layout.finalNorm, Int32(rows), Int32(d), Float(config.rmsNormEps))
        if let bf16 = bf16Only {
            Gemm.multiply(m: rows, a: normed.pointer, lda: d, weights: bf16.lmHead, c: logits, ldc: config.vocabSize)
        } else {
            Self.rowProduct(normed.pointer, rows: rows, inFeatures: d, weights: weights + layout.lmHead, outFeatures: config.vocabSize,
                            into: logits, ldy: config.vocabSize, accumulate: false)
        }
    }

    /// y[rows, out] (+)= x[rows, in] · Wᵀ. Workers take blocks of output columns as they finish the
    /// previous one, so a worker that the OS pauses (the machine is shared) does not hold up the step
    /// with half the work; the results do not depend on the split (see `srppo_rowdot`).
    static func rowProduct(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weights w: UnsafePointer<Float>,
                           outFeatures: Int, into y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let blocks = (outFeatures + rowProductColumns - 1) / rowProductColumns
        Parallel.forEachTask(blocks) { _, block in
            let first = block * rowProductColumns, count = min(rowProductColumns, outFeatures - first)
            srppo_rowdot(y + first, Int32(ldy), x, Int32(inFeatures), w + first * inFeatures,
                         Int32(inFeatures), Int32(rows), Int32(count), Int32(inFeatures), 1, accumulate ? 1 : 0)
        }
    }

    /// Output columns per task of `rowProduct`: a multiple of the kernel's 3- and 4-column tiles,
    /// ~200 KB of weights per task at d = 576.
    static let rowProductColumns = 96

    /// x[t, :] = embedding row of tokens[t]: fp32, or the bf16 values when scoring in bf16.
    func embed(_ tokens: UnsafeBufferPointer<Int32>, into x: UnsafeMutablePointer<Float>, bf16: BF16Weights? = nil) {
        let d = config.hiddenSize
        precondition(bf16 != nil || hasFP32Matrices, "fp32 forward on a bf16 weight image")
        for (t, token) in tokens.enumerated() {
            if let bf16 {
                bf16.embedding.copyRow(Int(token), into: x + t * d)
            } else {
                (x + t * d).update(from: weights + layout.embedding + Int(token) * d, count: d)
            }
        }
    }
}
