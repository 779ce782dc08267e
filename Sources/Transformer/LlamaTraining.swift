import CKernels
import Foundation
import Compute

/// Everything a training forward pass keeps for the backward.
public final class TrainingTape {
    let batch: PackedBatch
    /// One per layer: with full activations, or (recompute mode) only the layer input, the rest shared.
    let layers: [LayerActivations]
    let recompute: Bool
    /// Residual stream entering the final norm at the scored rows [P, d], and its 1/rms.
    let finalInput: AlignedBuffer<Float>
    let finalRstd: AlignedBuffer<Float>
    /// Input of the output head at the scored rows: rmsnorm(finalInput) [P, d].
    public let headInput: AlignedBuffer<Float>

    /// Number of scored rows P (over the whole batch, in request order).
    public var scoredCount: Int { batch.scoredRows.count }
    /// Scored rows per request.
    public var scoredCounts: [Int] { batch.scoredCounts }
    /// The token each scored row predicts.
    public var scoredTargets: [Int32] { batch.scoredTargets }

    init(batch: PackedBatch, layers: [LayerActivations], recompute: Bool, config: LlamaConfig) {
        self.batch = batch
        self.layers = layers
        self.recompute = recompute
        let P = batch.scoredRows.count
        finalInput = AlignedBuffer(count: P * config.hiddenSize)
        finalRstd = AlignedBuffer(count: P)
        headInput = AlignedBuffer(count: P * config.hiddenSize)
    }
}

/// What the LM head returns in training: per scored row, log p(target) and the entropy of the
/// predicted distribution (0 unless asked for), and the gradient with respect to the head input.
public struct LMHeadResult {
    public let logProbs: [Float]
    public let entropies: [Float]
    public let headInputGradient: AlignedBuffer<Float>
}

extension LlamaModel {
    // MARK: Forward for training

    /// Runs the decoder stack keeping what the backward needs. With `recompute`, only each layer's
    /// input is kept (T·d floats per layer) and the layer is run again during the backward: about a
    /// third more compute for a fraction of the memory, for long sequences.
    ///
    /// On a bf16 weight image (`hasFP32Matrices` false) the forward multiplies in bf16 as scoring does,
    /// and only adapters can be trained (`backward` with `gradients` nil).
    ///
    /// With `sharePrefixes`, requests with the same prompt run it once, as `logProbs` does; the
    /// backward then adds the gradients of all its continuations into the prompt's rows. Equal to the
    /// unshared forward and backward up to float rounding.
    public func trainingForward(_ requests: [ScoringRequest], recompute: Bool = false, sharePrefixes: Bool = false) throws -> TrainingTape {
        precondition(bf16Weights == nil || bf16Only != nil, "an fp32 model trains in fp32: set weightPrecision = .f32 first")
        try validate(requests)
        let batch = PackedBatch(requests, sharePrefixes: sharePrefixes)
        let T = batch.tokenCount, d = config.hiddenSize
        let layers: [LayerActivations]
        if recompute {
            let shared = LayerActivations(config: config, tokens: T, keepResiduals: true)
            layers = layout.layers.map { _ in LayerActivations(sharing: shared, input: AlignedBuffer(count: T * d)) }
        } else {
            layers = layout.layers.map { _ in LayerActivations(config: config, tokens: T, keepResiduals: true) }
        }
        let x = AlignedBuffer<Float>(count: T * d)
        forward(batch, residual: x) { layers[$0] }
        let tape = TrainingTape(batch: batch, layers: layers, recompute: recompute, config: config)
        for (i, row) in batch.scoredRows.enumerated() {
            (tape.finalInput.pointer + i * d).update(from: x.pointer + row * d, count: d)
        }
        rmsNorm(tape.finalInput.pointer, weight: layout.finalNorm, rows: tape.scoredCount,
                into: tape.headInput.pointer, rstd: tape.finalRstd.pointer)
        return tape
    }

    // MARK: LM head

    /// The LM head forward and backward in one pass over chunks of scored rows, so the [rows, V]
    /// logits exist for one chunk at a time. `gradient(row, logp, entropy)` returns
    /// (∂loss/∂logp, ∂loss/∂entropy) for the row; it runs after the row's values are known.
    /// Accumulates the head weights' gradient into `gradients` (the embedding when tied) when given.
    /// Log-probs and entropies are those of softmax(logits / `temperature`), as `logProbs` gives them.
    public func lmHeadForwardBackward(_ tape: TrainingTape, computeEntropy: Bool, temperature: Double = 1,
                                      gradients: AlignedBuffer<Float>?,
                                      gradient: (_ row: Int, _ logProb: Float, _ entropy: Float) -> (Float, Float)) -> LMHeadResult {
        let d = config.hiddenSize, V = config.vocabSize
        let P = tape.scoredCount
        let chunk = Self.trainingHeadRows
        let logits = AlignedBuffer<Float>(count: min(chunk, max(P, 1)) * V)
        let lse = AlignedBuffer<Float>(count: chunk)
        let logProbs = AlignedBuffer<Float>(count: P), entropies = AlignedBuffer<Float>(count: P)
        let gLogProb = AlignedBuffer<Float>(count: chunk), gEntropy = AlignedBuffer<Float>(count: chunk)
        let dInput = AlignedBuffer<Float>(count: P * d)
        let head = weights + layout.lmHead
        // On a bf16 image: logits through the bf16 GEMM, ∂h through the head's rows unpacked a vocabulary block at a time.
        let bf16Head = bf16Only?.lmHead
        let headBlocks = bf16Head == nil ? [] : Self.blocks(V, width: Self.headColumns)
        let unpackedBlock = AlignedBuffer<Float>(count: (headBlocks.map(\.count).max() ?? 0) * d)
        precondition(gradients == nil || bf16Head == nil, "the head of a bf16 weight image cannot be trained")
        let targets = tape.scoredTargets
        var start = 0
        while start < P {
            let rows = min(chunk, P - start)
            let h = tape.headInput.pointer + start * d
            // logits[rows, V] = h · E^T
            if let bf16Head {
                Gemm.multiply(m: rows, a: h, lda: d, weights: bf16Head, c: logits.pointer, ldc: V)
            } else {
                Gemm.multiply(m: rows, n: V, k: d, a: h, lda: d, b: head, ldb: d, transB: .transposed, c: logits.pointer, ldc: V)
            }
            // At temperature T the distribution is softmax(logits / T); the chain rule brings 1/T back below.
            if temperature != 1 { srppo_scale(logits.pointer, rows * V, Float(1 / temperature)) }
            Parallel.forRanges(rows) { r in
                srppo_logsumexp_rows(lse.pointer + r.lowerBound, logits.pointer + r.lowerBound * V, Int32(r.count), Int32(V), Int32(V))
                for i in r {
                    let z = logits.pointer + i * V
                    logProbs.pointer[start + i] = z[Int(targets[start + i])] - lse.pointer[i]
                    if computeEntropy { entropies.pointer[start + i] = srppo_softmax_entropy(z, Int32(V), lse.pointer[i]) }
                }
            }
            for i in 0..<rows {
                (gLogProb.pointer[i], gEntropy.pointer[i]) = gradient(start + i, logProbs.pointer[start + i], entropies.pointer[start + i])
            }
            // logits → ∂loss/∂logits, in place
            Parallel.forRanges(rows) { r in
                for i in r {
                    srppo_log_softmax_backward(logits.pointer + i * V, Int32(V), lse.pointer[i], targets[start + i],
                                               gLogProb.pointer[i], gEntropy.pointer[i], entropies.pointer[start + i])
                }
            }
            if temperature != 1 { srppo_scale(logits.pointer, rows * V, Float(1 / temperature)) }
            // ∂h[rows, d] = ∂logits · E;  ∂E[V, d] += ∂logits^T · h
            if let bf16Head {
                for (b, block) in headBlocks.enumerated() {
                    bf16Head.unpack(rows: block, into: unpackedBlock.pointer)
                    Gemm.multiply(m: rows, n: d, k: block.count, a: logits.pointer + block.lowerBound, lda: V, b: unpackedBlock.pointer,
                                  ldb: d, c: dInput.pointer + start * d, ldc: d, beta: b == 0 ? 0 : 1)
                }
            } else {
                Gemm.multiply(m: rows, n: d, k: V, a: logits.pointer, lda: V, b: head, ldb: d, c: dInput.pointer + start * d, ldc: d)
            }
            if let gradients {
                Gemm.multiply(m: V, n: d, k: rows, a: logits.pointer, lda: V, transA: .transposed, b: h, ldb: d,
                              c: gradients.pointer + layout.lmHead, ldc: d, beta: 1)
            }
            start += rows
        }
        return LMHeadResult(logProbs: Array(logProbs.buffer), entropies: Array(entropies.buffer), headInputGradient: dInput)
    }

    static let trainingHeadRows = 256

    // MARK: Backward

    /// Backpropagates ∂loss/∂(head input) [P, d] through the final norm, every layer and the
    /// embedding. Parameter gradients accumulate into `gradients` (the model's layout; nil when the
    /// base weights are frozen) and adapter gradients into `adapterGradients` (the adapters' layout).
    public func backward(_ tape: TrainingTape, headInputGradient dHead: AlignedBuffer<Float>,
                         into gradients: AlignedBuffer<Float>?, adapterGradients: AlignedBuffer<Float>? = nil) {
        let c = config
        let batch = tape.batch
        let T = batch.tokenCount, d = c.hiddenSize, P = tape.scoredCount
        if let gradients {
            precondition(gradients.count >= layout.parameterCount)
            precondition(bf16Only == nil, "a model on a bf16 weight image trains adapters only")
        }
        let g = gradients?.pointer

        // Final norm: ∂x at the scored rows; other rows get no gradient from the head.
        let dx = AlignedBuffer<Float>(count: T * d)
        let dFinal = AlignedBuffer<Float>(count: P * d)
        rmsNormBackward(dx: dFinal.pointer, dWeight: g.map { $0 + layout.finalNorm }, dy: dHead.pointer,
                        x: tape.finalInput.pointer, weight: layout.finalNorm, rstd: tape.finalRstd.pointer, rows: P)
        for (i, row) in batch.scoredRows.enumerated() {
            srppo_add_inplace(dx.pointer + row * d, dFinal.pointer + i * d, d)
        }

        let scratch = BackwardScratch(config: c, tokens: T, longest: batch.longest, unpacksBF16: bf16Only != nil)
        for index in layout.layers.indices.reversed() {
            let a = tape.layers[index]
            if tape.recompute {
                let x = scratch.recomputeResidual
                x.pointer.update(from: a.input!.pointer, count: T * d)
                forwardLayer(index, batch: batch, x: x.pointer, a: a)
            }
            layerBackward(index, batch: batch, a: a, dx: dx.pointer, gradients: g,
                          adapterGradients: adapterGradients?.pointer, scratch: scratch)
        }

        // Embedding rows of the tokens.
        if let g {
            for (t, token) in batch.tokens.enumerated() {
                srppo_add_inplace(g + layout.embedding + Int(token) * d, dx.pointer + t * d, d)
            }
        }
    }

    /// ∂x [T, d] arrives as the gradient of the layer's output and leaves as that of its input.
    private func layerBackward(_ index: Int, batch: PackedBatch, a: LayerActivations, dx: UnsafeMutablePointer<Float>,
                               gradients g: UnsafeMutablePointer<Float>?, adapterGradients: UnsafeMutablePointer<Float>?,
                               scratch: BackwardScratch) {
        let c = config
        let layer = layout.layers[index]
        let T = batch.tokenCount, d = c.hiddenSize, f = c.intermediateSize
        func projection(_ group: ProjectionGroup, x: UnsafePointer<Float>, inFeatures: Int, outFeatures: Int,
                        dY: UnsafePointer<Float>, dX: UnsafeMutablePointer<Float>) {
            projectionBackward(group, layer: index, x: x, inFeatures: inFeatures, outFeatures: outFeatures, rows: T,
                               dY: dY, dX: dX, gradients: g, adapterGradients: adapterGradients, scratch: scratch)
        }

        // MLP: x_out = x_mid + down(swiglu(gateUp)),  gateUp = rmsnorm(x_mid) · W_gu^T
        let dHidden = scratch.hidden.pointer, dGateUp = scratch.gateUp.pointer, dNormed = scratch.normed.pointer
        projection(.down, x: a.hidden.pointer, inFeatures: f, outFeatures: d, dY: dx, dX: dHidden)
        Parallel.forRanges(T) { rows in
            for t in rows {
                let gateUp = a.gateUp.pointer + t * 2 * f, dgu = dGateUp + t * 2 * f
                srppo_swiglu_backward(dgu, dgu + f, dHidden + t * f, gateUp, gateUp + f, f)
            }
        }
        projection(.gateUp, x: a.mlpNormed.pointer, inFeatures: d, outFeatures: 2 * f, dY: dGateUp, dX: dNormed)
        rmsNormBackward(dx: dx, dWeight: g.map { $0 + layer.mlpNorm }, dy: dNormed, x: a.middle!.pointer,
                        weight: layer.mlpNorm, rstd: a.mlpRstd.pointer, rows: T)

        // Attention: x_mid = x_in + o(attention(rope(q), rope(k), v)),  qkv = rmsnorm(x_in) · W_qkv^T
        let dAttention = scratch.attention.pointer, dQKV = scratch.qkv.pointer
        projection(.o, x: a.attention.pointer, inFeatures: c.qDim, outFeatures: d, dY: dx, dX: dAttention)
        attentionBackward(qkv: a.qkv.pointer, dOut: dAttention, dQKV: dQKV, batch: batch, scratch: scratch)
        batch.positions.withUnsafeBufferPointer { positions in
            let (cosTable, sinTable) = rope.tables(covering: batch.longest)
            Parallel.forRanges(T) { rows in
                let p = positions.baseAddress! + rows.lowerBound
                let dq = dQKV + rows.lowerBound * c.qkvDim
                srppo_rope_backward(dq, Int32(rows.count), Int32(c.qkvDim), Int32(c.numHeads), Int32(c.headDim),
                                    p, cosTable, sinTable)
                srppo_rope_backward(dq + c.qDim, Int32(rows.count), Int32(c.qkvDim), Int32(c.numKVHeads), Int32(c.headDim),
                                    p, cosTable, sinTable)
            }
        }
        projection(.qkv, x: a.attentionNormed.pointer, inFeatures: d, outFeatures: c.qkvDim, dY: dQKV, dX: dNormed)
        rmsNormBackward(dx: dx, dWeight: g.map { $0 + layer.attentionNorm }, dy: dNormed, x: a.input!.pointer,
                        weight: layer.attentionNorm, rstd: a.attentionRstd.pointer, rows: T)
    }

    /// Backward of y = x·Wᵀ + b + LoRA for one projection group over all T rows: dX = dY·W (+ the
    /// adapters' share), and, when trainable, ∂W += dYᵀ·x, ∂b += Σ dY and the adapters' ∂A, ∂B.
    /// On a bf16 image W is the bf16 values, unpacked to fp32 for the product.
    private func projectionBackward(_ group: ProjectionGroup, layer: Int, x: UnsafePointer<Float>, inFeatures: Int,
                                    outFeatures: Int, rows T: Int, dY: UnsafePointer<Float>, dX: UnsafeMutablePointer<Float>,
                                    gradients g: UnsafeMutablePointer<Float>?, adapterGradients: UnsafeMutablePointer<Float>?,
                                    scratch: BackwardScratch) {
        let (weight, bias) = group.weightOffset(layout.layers[layer])
        var w = UnsafePointer(weights + weight)
        if let unpacked = scratch.unpackedWeights, let bf16 = bf16Only?.matrix(group, layer: layer) {
            bf16.unpack(into: unpacked.pointer)
            w = UnsafePointer(unpacked.pointer)
        }
        Gemm.multiply(m: T, n: inFeatures, k: outFeatures, a: dY, lda: outFeatures, b: w, ldb: inFeatures,
                      c: dX, ldc: inFeatures)
        if let g {
            Gemm.multiply(m: outFeatures, n: inFeatures, k: T, a: dY, lda: outFeatures, transA: .transposed, b: x, ldb: inFeatures,
                          c: g + weight, ldc: inFeatures, beta: 1)
            if let bias { for r in 0..<T { srppo_add_inplace(g + bias, dY + r * outFeatures, outFeatures) } }
        }
        guard let lora = adapters else { return }
        let rank = lora.config.rank, scale = lora.config.scale, p = lora.parameters.pointer
        let u = AlignedBuffer<Float>(count: T * rank), du = AlignedBuffer<Float>(count: T * rank)
        for adapter in lora.adapters(layer: layer, group: group) {
            let dYa = dY + adapter.columns.lowerBound
            // u = x·Aᵀ [T, r];  du = s·dY_a·B [T, r];  dX += du·A
            Gemm.multiply(m: T, n: rank, k: inFeatures, a: x, lda: inFeatures, b: p + adapter.a, ldb: inFeatures,
                          transB: .transposed, c: u.pointer, ldc: rank)
            Gemm.multiply(m: T, n: rank, k: adapter.outFeatures, a: dYa, lda: outFeatures, b: p + adapter.b, ldb: rank,
                          c: du.pointer, ldc: rank, alpha: scale)
            Gemm.multiply(m: T, n: inFeatures, k: rank, a: du.pointer, lda: rank, b: p + adapter.a, ldb: inFeatures,
                          c: dX, ldc: inFeatures, beta: 1)
            if let ga = adapterGradients {
                // ∂B += s·dY_aᵀ·u [out, r];  ∂A += duᵀ·x [r, in]
                Gemm.multiply(m: adapter.outFeatures, n: rank, k: T, a: dYa, lda: outFeatures, transA: .transposed,
                              b: u.pointer, ldb: rank, c: ga + adapter.b, ldc: rank, alpha: scale, beta: 1)
                Gemm.multiply(m: rank, n: inFeatures, k: T, a: du.pointer, lda: rank, transA: .transposed, b: x, ldb: inFeatures,
                              c: ga + adapter.a, ldc: inFeatures, beta: 1)
            }
        }
    }

    /// ∂q, ∂k, ∂v (after RoPE) into dQKV [T, qkvDim] from ∂out [T, H·e]. Probabilities are
    /// recomputed block by block as in the forward, with the same blocks and products. One task per
    /// key-value group and per shared prompt with its continuations (or lone sequence): the ∂k, ∂v
    /// that a group's query heads, and a prompt's continuations, add into are accumulated by a single
    /// worker, in a fixed order.
    private func attentionBackward(qkv: UnsafeMutablePointer<Float>, dOut: UnsafeMutablePointer<Float>,
                                   dQKV: UnsafeMutablePointer<Float>, batch: PackedBatch, scratch: BackwardScratch) {
        let c = config
        let e = c.headDim, G = c.numKVHeads, group = c.numHeads / c.numKVHeads, ld = c.qkvDim
        let scale = Float(1.0 / Double(e).squareRoot())
        let block = Self.attentionBlock
        dQKV.update(repeating: 0, count: batch.tokenCount * ld)
        let stride = block * batch.longest
        let families = batch.prefixFamilies
        Parallel.forEachTask(families.count * G) { worker, task in
            let kvHead = task % G
            let probabilities = scratch.probabilities.pointer + worker * stride
            let dScores = scratch.dScores.pointer + worker * stride
            for s in families[task / G] {
                let start = batch.starts[s], L = batch.lengths[s], C = batch.contexts[s]
                let k = qkv + start * ld + c.qDim + kvHead * e, v = k + c.kvDim
                let dk = dQKV + start * ld + c.qDim + kvHead * e, dv = dk + c.kvDim
                // The shared prompt's keys and values and their gradients (C = 0: none).
                let promptOffset = batch.prefixStarts[s] * ld + c.qDim + kvHead * e
                let promptK = qkv + promptOffset, promptV = promptK + c.kvDim
                let dPromptK = dQKV + promptOffset, dPromptV = dPromptK + c.kvDim
                for h in kvHead * group..<(kvHead + 1) * group {
                    let q = qkv + start * ld + h * e, dq = dQKV + start * ld + h * e
                    let dO = dOut + start * c.qDim + h * e
                    var r0 = 0
                    while r0 < L {
                        let position = C + r0
                        let rows = min(block - position % block, L - r0), keys = position + rows, own = r0 + rows
                        attentionProbabilities(probabilities, q: q + r0 * ld, rows: rows, promptK: promptK, context: C, k: k, own: own)
                        // ∂[prompt v; v] += P^T · ∂o;  ∂P = ∂o · [prompt v; v]^T
                        if C > 0 {
                            Gemm.multiplySerial(m: C, n: e, k: rows, a: probabilities, lda: keys, transA: .transposed,
                                                b: dO + r0 * c.qDim, ldb: c.qDim, c: dPromptV, ldc: ld, beta: 1)
                            Gemm.multiplySerial(m: rows, n: C, k: e, a: dO + r0 * c.qDim, lda: c.qDim, b: promptV, ldb: ld,
                                                transB: .transposed, c: dScores, ldc: keys)
                        }
                        Gemm.multiplySerial(m: own, n: e, k: rows, a: probabilities + C, lda: keys, transA: .transposed,
                                            b: dO + r0 * c.qDim, ldb: c.qDim, c: dv, ldc: ld, beta: 1)
                        Gemm.multiplySerial(m: rows, n: own, k: e, a: dO + r0 * c.qDim, lda: c.qDim, b: v, ldb: ld, transB: .transposed,
                                            c: dScores + C, ldc: keys)
                        srppo_softmax_backward(dScores, probabilities, Int32(rows), Int32(keys), Int32(keys), scale)
                        // ∂q[block] = ∂S · [prompt k; k];  ∂[prompt k; k] += ∂S^T · q[block]
                        if C > 0 {
                            Gemm.multiplySerial(m: rows, n: e, k: C, a: dScores, lda: keys, b: promptK, ldb: ld, c: dq + r0 * ld, ldc: ld)
                            Gemm.multiplySerial(m: C, n: e, k: rows, a: dScores, lda: keys, transA: .transposed, b: q + r0 * ld, ldb: ld,
                                                c: dPromptK, ldc: ld, beta: 1)
                        }
                        Gemm.multiplySerial(m: rows, n: e, k: own, a: dScores + C, lda: keys, b: k, ldb: ld, c: dq + r0 * ld, ldc: ld,
                                            beta: C > 0 ? 1 : 0)
                        Gemm.multiplySerial(m: own, n: e, k: rows, a: dScores + C, lda: keys, transA: .transposed, b: q + r0 * ld, ldb: ld,
                                            c: dk, ldc: ld, beta: 1)
                        r0 += rows
                    }
                }
            }
        }
    }

    /// ∂x += rmsnorm backward; ∂weight += its gradient when trainable (per-worker partial sums,
    /// added in order).
    func rmsNormBackward(dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                         x: UnsafePointer<Float>, weight: Int, rstd: UnsafePointer<Float>, rows: Int) {
        let d = config.hiddenSize
        let partials = dWeight.map { _ in AlignedBuffer<Float>(count: Parallel.threads * d) }
        Parallel.forRangesIndexed(rows) { part, r in
            srppo_rmsnorm_backward(dx + r.lowerBound * d, partials.map { $0.pointer + part * d }, dy + r.lowerBound * d,
                                   x + r.lowerBound * d, weights + weight, rstd + r.lowerBound, Int32(r.count), Int32(d))
        }
        if let dWeight, let partials {
            for part in 0..<Parallel.threads { srppo_add_inplace(dWeight, partials.pointer + part * d, d) }
        }
    }
}

/// Gradient buffers of one layer's backward, reused for every layer.
final class BackwardScratch {
    let hidden, gateUp, normed, attention, qkv, probabilities, dScores, recomputeResidual: AlignedBuffer<Float>
    /// One projection group's weights as fp32, for a model on a bf16 image (nil otherwise).
    let unpackedWeights: AlignedBuffer<Float>?

    init(config c: LlamaConfig, tokens T: Int, longest: Int, unpacksBF16: Bool) {
        let largestGroup = max(c.qkvDim * c.hiddenSize, c.hiddenSize * c.qDim, 2 * c.intermediateSize * c.hiddenSize)
        unpackedWeights = unpacksBF16 ? AlignedBuffer(count: largestGroup) : nil
        hidden = AlignedBuffer(count: T * c.intermediateSize)
        gateUp = AlignedBuffer(count: T * 2 * c.intermediateSize)
        normed = AlignedBuffer(count: T * c.hiddenSize)
        attention = AlignedBuffer(count: T * c.qDim)
        qkv = AlignedBuffer(count: T * c.qkvDim)
        probabilities = AlignedBuffer(count: Parallel.threads * LlamaModel.attentionBlock * longest)
        dScores = AlignedBuffer(count: Parallel.threads * LlamaModel.attentionBlock * longest)
        recomputeResidual = AlignedBuffer(count: T * c.hiddenSize)
    }
}
