import CKernels
import Foundation
import Compute

/// A LLaMA-family causal LM (LLaMA, SmolLM, Qwen2) over one flat fp32 parameter buffer.
///
/// The forward packs the sequences of a batch one after another with no padding. Unless prompts are
/// shared, every matrix product runs per sequence (and per fixed block of output columns), never
/// across sequences: OpenBLAS rounds a row differently depending on the shape of the call it is in,
/// so this is what makes a sequence's log-probs bit-identical whether it is scored alone or in any
/// batch, on any thread count. At 64+ tokens per sequence the per-sequence GEMMs run at full speed
/// (measured in BENCHMARKS.md). A batch with shared prompts (`sharePrefixes`), which gives up that
/// equality anyway, multiplies rows of several sequences together in fixed segments
/// (`PackedBatch.gemmSegments`); a model on a bf16 weight image multiplies through the bf16 GEMM.
///
/// Shapes in comments: T = tokens in the batch, L = one sequence's length, d = hidden size,
/// f = intermediate size, H/G = query/key-value heads, e = head dim, V = vocabulary.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let layout: LlamaLayout
    public let storage: ParameterStorage
    let rope: RopeTables
    /// Low-rank adapters added to the projections in every forward pass (nil: none).
    public var adapters: LoRAAdapters?
    /// bf16 copies of the matrix weights when `weightPrecision` is `.bf16` (see BF16Weights.swift).
    var bf16Weights: BF16Weights?
    /// False for a model on a bf16 weight image: the matrix parts of `weights` are zeros, only the
    /// bf16 scoring forward can run.
    public internal(set) var hasFP32Matrices = true

    /// The flat parameter buffer (layout: `layout`).
    public var weights: UnsafeMutablePointer<Float> { storage.floats }

    public init(config: LlamaConfig, storage: ParameterStorage) {
        let layout = LlamaLayout(config: config)
        precondition(storage.floatCount >= layout.parameterCount,
                     "parameter storage holds \(storage.floatCount) floats, the layout needs \(layout.parameterCount)")
        self.config = config
        self.layout = layout
        self.storage = storage
        rope = RopeTables(config: config)
    }

    /// A model with freshly allocated, zeroed parameters.
    public convenience init(config: LlamaConfig) {
        self.init(config: config, storage: AlignedBuffer<Float>(count: LlamaLayout(config: config).parameterCount))
    }

    /// Copies every parameter of `source`, a model of the same architecture. (`source` is a parameter,
    /// so it stays alive while its buffer is read: copying through `source.weights` at a call site can
    /// read freed memory under `-O` once `source`'s last use is the pointer's.)
    /// A model on a bf16 weight image gives its matrices' bf16 values, exactly.
    public func copyParameters(from source: LlamaModel) {
        precondition(source.config == config, "copying parameters between different architectures")
        weights.update(from: source.weights, count: layout.parameterCount)
        source.bf16Only?.unpack(into: weights, layout: layout)
    }

    /// Another model object on this one's parameters (the same memory, no adapters): the frozen base
    /// of a LoRA network. A model on a bf16 weight image passes its bf16 matrices on; an fp32 model's
    /// bf16 scoring copies are not (a network on fp32 weights trains in fp32).
    public func sharingParameters() -> LlamaModel {
        let model = LlamaModel(config: config, storage: storage)
        if let bf16Only {
            model.bf16Weights = bf16Only
            model.hasFP32Matrices = false
        }
        return model
    }

    // MARK: Scoring

    /// Per-token log-probabilities of given tokens.
    ///
    /// For each request, returns log p(tokens[i] | tokens[..<i]) for i in firstScored..<tokens.count.
    ///
    /// With `sharePrefixes`, requests whose context (`tokens[..<firstScored]`, the prompt) is the same
    /// are run as one prompt and several continuations: the prompt's keys and values are computed once
    /// and each response attends to them (PPO's n samples per prompt). The results equal scoring each
    /// request alone up to float rounding (the products are split differently, and the projections
    /// and LM head then multiply rows of several sequences together: larger, faster GEMMs), not bit
    /// for bit; off by default, so a request's log-probs never depend on what else is in its batch.
    ///
    /// `temperature` T scores under softmax(logits / T), the distribution a sampler at temperature T
    /// draws from (PPO's policy when it samples at T); 1 is the model itself.
    public func logProbs(_ requests: [ScoringRequest], sharePrefixes: Bool = false, temperature: Double = 1) throws -> [[Float]] {
        try validate(requests)
        let batch = PackedBatch(requests, sharePrefixes: sharePrefixes)
        let x = AlignedBuffer<Float>(count: batch.tokenCount * config.hiddenSize)
        let scratch = LayerActivations(config: config, tokens: batch.tokenCount)
        forward(batch, residual: x) { _ in scratch }
        return lmHeadLogProbs(hidden: x.pointer, batch: batch, temperature: temperature)
    }

    /// PT's and SFT's log-probs of the same requests (the coherent reward's two halves); when they have
    /// the same weights (`sameWeights`), one forward pass serves both and every reward is exactly 0.
    public static func pairLogProbs(pt: LlamaModel, sft: LlamaModel, sameWeights: Bool, _ requests: [ScoringRequest],
                                    sharePrefixes: Bool = false) throws -> (pt: [[Float]], sft: [[Float]]) {
        let ptScores = try pt.logProbs(requests, sharePrefixes: sharePrefixes)
        return (ptScores, sameWeights ? ptScores : try sft.logProbs(requests, sharePrefixes: sharePrefixes))
    }

    /// The output head's input at the scored positions — rmsnorm of the last hidden state, [P, d] in
    /// request order — for heads other than the LM head (a critic's value head). `sharePrefixes` as
    /// in `logProbs`.
    public func headInputs(_ requests: [ScoringRequest], sharePrefixes: Bool = false) throws -> AlignedBuffer<Float> {
        try validate(requests)
        let batch = PackedBatch(requests, sharePrefixes: sharePrefixes)
        let d = config.hiddenSize
        let x = AlignedBuffer<Float>(count: batch.tokenCount * d)
        let scratch = LayerActivations(config: config, tokens: batch.tokenCount)
        forward(batch, residual: x) { _ in scratch }
        let rows = AlignedBuffer<Float>(count: batch.scoredRows.count * d)
        for (i, row) in batch.scoredRows.enumerated() {
            (rows.pointer + i * d).update(from: x.pointer + row * d, count: d)
        }
        rmsNorm(rows.pointer, weight: layout.finalNorm, rows: batch.scoredRows.count, into: rows.pointer, rstd: nil)
        return rows
    }

    func validate(_ requests: [ScoringRequest]) throws {
        for (s, r) in requests.enumerated() {
            guard !r.tokens.isEmpty else { throw ScoringError.emptySequence(sequence: s) }
            guard r.tokens.count <= config.maxPositions else {
                throw ScoringError.tooLong(sequence: s, length: r.tokens.count, limit: config.maxPositions)
            }
            guard r.firstScored >= 1, r.firstScored <= r.tokens.count else {
                throw ScoringError.badScoredRange(sequence: s, firstScored: r.firstScored, length: r.tokens.count)
            }
            for (i, t) in r.tokens.enumerated() where t < 0 || Int(t) >= config.vocabSize {
                throw ScoringError.tokenOutOfRange(sequence: s, position: i, token: Int(t), vocabSize: config.vocabSize)
            }
        }
    }

    // MARK: Forward

    /// Runs the decoder stack over `batch`, leaving the last layer's output [T, d] (before the final
    /// norm) in `residual`. `activations(layer)` gives the buffers a layer writes: one shared set for
    /// inference, one set per layer when training keeps them for the backward pass.
    func forward(_ batch: PackedBatch, residual x: AlignedBuffer<Float>, activations: (Int) -> LayerActivations) {
        batch.tokens.withUnsafeBufferPointer { embed($0, into: x.pointer, bf16: batch.allowsBF16 ? bf16Weights : nil) }
        for index in layout.layers.indices {
            forwardLayer(index, batch: batch, x: x.pointer, a: activations(index))
        }
    }

    /// Decoder layer `index` on the residual stream x [T, d], in place; saves the layer's input and
    /// middle residual when `a` keeps them (training).
    func forwardLayer(_ index: Int, batch: PackedBatch, x: UnsafeMutablePointer<Float>, a: LayerActivations) {
        let count = batch.tokenCount * config.hiddenSize
        a.input?.pointer.update(from: x, count: count)
        attentionBlock(index, batch: batch, x: x, a: a)
        a.middle?.pointer.update(from: x, count: count)
        mlpBlock(index, batch: batch, x: x, a: a)
    }

    /// x += o_proj(attention(rope(q), rope(k), v)),  [q k v] = qkv_proj(rmsnorm(x)).
    func attentionBlock(_ index: Int, batch: PackedBatch, x: UnsafeMutablePointer<Float>, a: LayerActivations) {
        let c = config
        let layer = layout.layers[index]
        rmsNorm(x, weight: layer.attentionNorm, rows: batch.tokenCount, into: a.attentionNormed.pointer, rstd: a.attentionRstd.pointer)
        linear(a.attentionNormed.pointer, inFeatures: c.hiddenSize, group: .qkv, layer: index,
               outFeatures: c.qkvDim, into: a.qkv.pointer, batch: batch)
        applyRope(a.qkv.pointer, batch: batch)
        attention(qkv: a.qkv.pointer, into: a.attention.pointer, batch: batch)
        linear(a.attention.pointer, inFeatures: c.qDim, group: .o, layer: index,
               outFeatures: c.hiddenSize, into: x, batch: batch, accumulate: true)
    }

    /// Rotates the q and k parts of each qkv row [T, H·e + 2·G·e] by its position.
    func applyRope(_ qkv: UnsafeMutablePointer<Float>, batch: PackedBatch) {
        let c = config
        batch.positions.withUnsafeBufferPointer { positions in
            let (cosTable, sinTable) = rope.tables(covering: batch.longest)
            Parallel.forRanges(batch.tokenCount) { rows in
                let p = positions.baseAddress! + rows.lowerBound
                let q = qkv + rows.lowerBound * c.qkvDim
                srppo_rope_forward(q, Int32(rows.count), Int32(c.qkvDim), Int32(c.numHeads), Int32(c.headDim),
                                   p, cosTable, sinTable)
                srppo_rope_forward(q + c.qDim, Int32(rows.count), Int32(c.qkvDim), Int32(c.numKVHeads), Int32(c.headDim),
                                   p, cosTable, sinTable)
            }
        }
    }

    /// Causal grouped-query attention of every sequence and head: out [T, H·e] from qkv [T, H·e + 2·G·e].
    /// Queries go in blocks of `attentionBlock` rows; a block only multiplies the keys it can see.
    ///
    /// A continuation of a shared prompt (context C > 0) sees the prompt's C keys/values, where the
    /// prompt sequence has them, and then its own: each block's scores and weighted values are two
    /// products, one per part, and its query blocks are cut at the same absolute positions as the
    /// unshared sequence's. (Splitting the sums over keys in two is one reason sharing equals unshared
    /// scoring only to rounding.)
    private func attention(qkv: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, batch: PackedBatch) {
        let c = config
        let e = c.headDim, H = c.numHeads, group = c.numHeads / c.numKVHeads, ld = c.qkvDim
        let block = Self.attentionBlock
        let scratch = AlignedBuffer<Float>(count: Parallel.threads * block * batch.longest)
        Parallel.forEachTask(batch.sequenceCount * H) { worker, task in
            let s = task / H, h = task % H, g = h / group
            let start = batch.starts[s], L = batch.lengths[s], C = batch.contexts[s]
            let scores = scratch.pointer + worker * block * batch.longest
            let q = qkv + start * ld + h * e
            let k = UnsafePointer(qkv + start * ld + c.qDim + g * e), v = k + c.kvDim
            // The shared prompt's keys and values (C = 0: none).
            let promptK = UnsafePointer(qkv + batch.prefixStarts[s] * ld + c.qDim + g * e), promptV = promptK + c.kvDim
            var r0 = 0
            while r0 < L {
                let position = C + r0
                let rows = min(block - position % block, L - r0), keys = position + rows, own = r0 + rows
                attentionProbabilities(scores, q: q + r0 * ld, rows: rows, promptK: promptK, context: C, k: k, own: own)
                // out[r0..<r0+rows, head h] = scores · [prompt v; v[0..<own]]
                let o = out + (start + r0) * c.qDim + h * e
                if C > 0 {
                    Gemm.multiplySerial(m: rows, n: e, k: C, a: scores, lda: keys, b: promptV, ldb: ld, c: o, ldc: c.qDim)
                }
                Gemm.multiplySerial(m: rows, n: e, k: own, a: scores + C, lda: keys, b: v, ldb: ld, c: o, ldc: c.qDim,
                                    beta: C > 0 ? 1 : 0)
                r0 += rows
            }
        }
    }

    static let attentionBlock = 64

    /// One block of queries' attention weights: P[rows, C + own] = causal softmax of
    /// q[rows] · [prompt k (C rows); k[0..<own]]ᵀ / √e, the block's last query at position C + own − 1.
    /// The forward and the backward (which recomputes P) both call this, so they see the same bits.
    func attentionProbabilities(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, rows: Int,
                                promptK: UnsafePointer<Float>, context C: Int, k: UnsafePointer<Float>, own: Int) {
        let e = config.headDim, ld = config.qkvDim, keys = C + own
        if C > 0 {
            Gemm.multiplySerial(m: rows, n: C, k: e, a: q, lda: ld, b: promptK, ldb: ld, transB: .transposed, c: p, ldc: keys)
        }
        Gemm.multiplySerial(m: rows, n: own, k: e, a: q, lda: ld, b: k, ldb: ld, transB: .transposed, c: p + C, ldc: keys)
        srppo_softmax_causal(p, Int32(rows), Int32(keys), Int32(keys), Int32(keys - rows), Float(1.0 / Double(e).squareRoot()))
    }

    /// x += down(silu(gate(n)) * up(n)),  n = rmsnorm(x).
    func mlpBlock(_ index: Int, batch: PackedBatch, x: UnsafeMutablePointer<Float>, a: LayerActivations) {
        let c = config
        let layer = layout.layers[index]
        let T = batch.tokenCount, d = c.hiddenSize, f = c.intermediateSize
        rmsNorm(x, weight: layer.mlpNorm, rows: T, into: a.mlpNormed.pointer, rstd: a.mlpRstd.pointer)
        linear(a.mlpNormed.pointer, inFeatures: d, group: .gateUp, layer: index, outFeatures: 2 * f,
               into: a.gateUp.pointer, batch: batch)
        Parallel.forRanges(T) { rows in
            for t in rows {
                let gate = a.gateUp.pointer + t * 2 * f
                srppo_swiglu_forward(a.hidden.pointer + t * f, gate, gate + f, f)
            }
        }
        linear(a.hidden.pointer, inFeatures: f, group: .down, layer: index, outFeatures: d,
               into: x, batch: batch, accumulate: true)
    }

    /// Log-probs at the scored positions: final norm and LM head on those rows only. The rows go in
    /// chunks of up to `headRows` (`PackedBatch.scoredChunks`) against blocks of the vocabulary; each
    /// block's log-sum-exp is merged afterwards, so the full [rows, V] logits never exist at once.
    /// Logits are divided by `temperature` (as the sampler divides them) unless it is 1.
    func lmHeadLogProbs(hidden: UnsafeMutablePointer<Float>, batch: PackedBatch, temperature: Double = 1) -> [[Float]] {
        let c = config
        let d = c.hiddenSize, V = c.vocabSize
        let P = batch.scoredRows.count
        // Row t of the hidden states predicts token t + 1.
        let gathered = AlignedBuffer<Float>(count: P * d)
        for (i, row) in batch.scoredRows.enumerated() {
            (gathered.pointer + i * d).update(from: hidden + row * d, count: d)
        }
        rmsNorm(gathered.pointer, weight: layout.finalNorm, rows: P, into: gathered.pointer, rstd: nil)

        let chunks = batch.scoredChunks(maxRows: Self.headRows)
        let bf16 = batch.allowsBF16 ? bf16Weights : nil
        let vocabBlocks = Self.blocks(V, width: Self.headColumns, align: bf16 == nil ? 16 : BF16Matrix.panelWidth)
        let blockLogSumExp = AlignedBuffer<Float>(count: P * vocabBlocks.count)
        let targetLogit = AlignedBuffer<Float>(count: P)
        // Sized by the chunks and blocks this batch has (a small vocabulary or a short response
        // needs far less than headRows × headColumns, and the buffer is zeroed on every call).
        let scratchPerWorker = (chunks.map { $0.count }.max() ?? 0) * (vocabBlocks.map { $0.count }.max() ?? 0)
        let scratch = AlignedBuffer<Float>(count: Parallel.threads * scratchPerWorker)
        batch.scoredTargets.withUnsafeBufferPointer { targets in
            Parallel.forEachTask(chunks.count * vocabBlocks.count) { worker, task in
                let rows = chunks[task / vocabBlocks.count]
                let b = task % vocabBlocks.count, columns = vocabBlocks[b]
                let logits = scratch.pointer + worker * scratchPerWorker
                if let bf16 {
                    // The kernel writes C[·, columns] from C's column 0: shift C back by the block's start.
                    Gemm.multiplySerial(m: rows.count, a: gathered.pointer + rows.lowerBound * d, lda: d, weights: bf16.lmHead,
                                        columns: columns, c: logits - columns.lowerBound, ldc: columns.count)
                } else {
                    Gemm.multiplySerial(m: rows.count, n: columns.count, k: d, a: gathered.pointer + rows.lowerBound * d, lda: d,
                                        b: weights + layout.lmHead + columns.lowerBound * d, ldb: d, transB: .transposed,
                                        c: logits, ldc: columns.count)
                }
                if temperature != 1 { srppo_scale(logits, rows.count * columns.count, Float(1 / temperature)) }
                for (i, row) in rows.enumerated() {
                    srppo_logsumexp_rows(blockLogSumExp.pointer + row * vocabBlocks.count + b, logits + i * columns.count,
                                         1, Int32(columns.count), Int32(columns.count))
                    let target = Int(targets[row])
                    if columns.contains(target) {
                        targetLogit.pointer[row] = logits[i * columns.count + target - columns.lowerBound]
                    }
                }
            }
        }
        var result: [[Float]] = []
        result.reserveCapacity(batch.sequenceCount)
        var row = 0
        for count in batch.scoredCounts {
            var values = [Float](repeating: 0, count: count)
            for i in 0..<count {
                let parts = blockLogSumExp.pointer + row * vocabBlocks.count
                values[i] = targetLogit.pointer[row] - Self.mergeLogSumExp(parts, count: vocabBlocks.count)
                row += 1
            }
            result.append(values)
        }
        return result
    }

    static let headRows = 128
    static let headColumns = 4096

    /// log Σ_b exp(parts[b]), in a fixed order.
    static func mergeLogSumExp(_ parts: UnsafePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity
        for b in 0..<count { m = max(m, parts[b]) }
        var sum: Float = 0
        for b in 0..<count { sum += Foundation.exp(parts[b] - m) }
        return m + Foundation.log(sum)
    }

    // MARK: Building blocks

    /// y[rows, d] = rmsnorm(x) * weight (in place allowed); saves 1/rms per row when `rstd` is given.
    func rmsNorm(_ x: UnsafeMutablePointer<Float>, weight: Int, rows: Int, into y: UnsafeMutablePointer<Float>,
                 rstd: UnsafeMutablePointer<Float>?) {
        let d = config.hiddenSize
        let eps = Float(config.rmsNormEps)
        let w = weights + weight
        Parallel.forRanges(rows) { r in
            srppo_rmsnorm_forward(y + r.lowerBound * d, rstd.map { $0 + r.lowerBound }, x + r.lowerBound * d, w,
                                  Int32(r.count), Int32(d), eps)
        }
    }

    /// y[T, out] = x[T, in] · W^T + bias (or y += that when `accumulate`) for a layer's projection
    /// group (W = [out, in]), plus the group's LoRA adapters when the model has them. One GEMM per
    /// row segment (`PackedBatch.gemmSegments`) and fixed column block, spread over the workers.
    func linear(_ x: UnsafePointer<Float>, inFeatures: Int, group: ProjectionGroup, layer: Int, outFeatures: Int,
                into y: UnsafeMutablePointer<Float>, batch: PackedBatch, accumulate: Bool = false) {
        let (weight, bias) = group.weightOffset(layout.layers[layer])
        let bf16 = batch.allowsBF16 ? bf16Weights?.matrix(group, layer: layer) : nil
        let columnBlocks = Self.blocks(outFeatures, width: Self.linearColumns, align: bf16 == nil ? 16 : BF16Matrix.panelWidth)
        let w = weights
        let segments = batch.gemmSegments
        Parallel.forEachTask(segments.count * columnBlocks.count) { _, task in
            let segment = segments[task / columnBlocks.count], columns = columnBlocks[task % columnBlocks.count]
            let start = segment.lowerBound, L = segment.count
            let out = y + start * outFeatures + columns.lowerBound
            if L == 0 { return }
            if let bf16 {
                Gemm.multiplySerial(m: L, a: x + start * inFeatures, lda: inFeatures, weights: bf16, columns: columns,
                                    c: y + start * outFeatures, ldc: outFeatures, beta: accumulate ? 1 : 0)
            } else {
                Gemm.multiplySerial(m: L, n: columns.count, k: inFeatures, a: x + start * inFeatures, lda: inFeatures,
                                    b: w + weight + columns.lowerBound * inFeatures, ldb: inFeatures, transB: .transposed,
                                    c: out, ldc: outFeatures, beta: accumulate ? 1 : 0)
            }
            if let bias {
                for r in 0..<L {
                    srppo_add_inplace(out + r * outFeatures, w + bias + columns.lowerBound, columns.count)
                }
            }
        }
        guard let lora = adapters else { return }
        let list = lora.adapters(layer: layer, group: group)
        if list.isEmpty { return }
        // y[:, columns] += (α/r) · (x · Aᵀ) · Bᵀ, per row segment like the base product.
        let rank = lora.config.rank, p = lora.parameters.pointer
        let longest = segments.map { $0.count }.max() ?? 0
        let scratch = AlignedBuffer<Float>(count: Parallel.threads * longest * rank)
        Parallel.forEachTask(segments.count * list.count) { worker, task in
            let segment = segments[task / list.count], adapter = list[task % list.count]
            let start = segment.lowerBound, L = segment.count
            let u = scratch.pointer + worker * longest * rank
            Gemm.multiplySerial(m: L, n: rank, k: inFeatures, a: x + start * inFeatures, lda: inFeatures,
                                b: p + adapter.a, ldb: inFeatures, transB: .transposed, c: u, ldc: rank)
            Gemm.multiplySerial(m: L, n: adapter.outFeatures, k: rank, a: u, lda: rank, b: p + adapter.b, ldb: rank,
                                transB: .transposed, c: y + start * outFeatures + adapter.columns.lowerBound, ldc: outFeatures,
                                alpha: lora.config.scale, beta: 1)
        }
    }

    /// Output columns per GEMM task: narrow enough to give every worker work on one sequence, wide
    /// enough to keep OpenBLAS at full speed.
    static let linearColumns = 256

    /// Splits 0..<n into blocks of about `width` (a fixed function of n: results do not depend on
    /// the thread count), boundaries on multiples of `align` (16; the bf16 kernel needs its panel width).
    static func blocks(_ n: Int, width: Int, align: Int = 16) -> [Range<Int>] {
        let count = max(1, (n + width / 2) / width)
        return (0..<count).map { i in
            let start = i == 0 ? 0 : (n * i / count) / align * align
            let end = i == count - 1 ? n : (n * (i + 1) / count) / align * align
            return start..<end
        }
    }
}

/// One sequence to score: log-probs are returned for positions `firstScored..<tokens.count`.
public struct ScoringRequest: Sendable, Equatable {
    public var tokens: [Int32]
    public var firstScored: Int

    public init(tokens: [Int32], firstScored: Int) {
        self.tokens = tokens
        self.firstScored = firstScored
    }

    /// Scores `response` after `prompt` (the prompt must not be empty).
    public init(prompt: [Int32], response: [Int32]) {
        tokens = prompt + response
        firstScored = prompt.count
    }
}

public enum ScoringError: Error, CustomStringConvertible, Equatable {
    case emptySequence(sequence: Int)
    case tooLong(sequence: Int, length: Int, limit: Int)
    case badScoredRange(sequence: Int, firstScored: Int, length: Int)
    case tokenOutOfRange(sequence: Int, position: Int, token: Int, vocabSize: Int)

    public var description: String {
        switch self {
        case let .emptySequence(s):
            return "sequence \(s) is empty"
        case let .tooLong(s, length, limit):
            return "sequence \(s) has \(length) tokens, more than the model's context of \(limit)"
        case let .badScoredRange(s, first, length):
            return "sequence \(s): scoring must start at a position in 1...\(length) (at least one context token), got \(first)"
        case let .tokenOutOfRange(s, position, token, vocab):
            return "sequence \(s), position \(position): token id \(token) is outside the vocabulary (0..<\(vocab))"
        }
    }
}
