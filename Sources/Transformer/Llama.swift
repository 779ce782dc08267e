import CKernels
import Foundation
import Tensor

/// A LLaMA-family causal LM (LLaMA, SmolLM, Qwen2) over one flat fp32 parameter buffer.
///
/// The scoring forward packs all sequences of a batch into one [tokens, features] matrix with no
/// padding: the projections and the MLP run as single GEMMs over every token, attention runs per
/// sequence and head, and the LM head runs only at the positions whose log-probs are asked for.
///
/// Shapes in comments: T = tokens in the batch, d = hidden size, f = intermediate size,
/// H/G = query/key-value heads, e = head dim, V = vocabulary.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let layout: LlamaLayout
    public let storage: ParameterStorage
    let rope: RopeTables

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

    // MARK: Scoring

    /// Per-token log-probabilities of given tokens.
    ///
    /// For each request, returns log p(tokens[i] | tokens[..<i]) for i in firstScored..<tokens.count.
    /// Sequences are independent: a batch gives the same values as scoring each alone.
    public func logProbs(_ requests: [ScoringRequest]) throws -> [[Float]] {
        try validate(requests)
        let batch = PackedBatch(requests)
        let hidden = forwardHidden(batch)
        return lmHeadLogProbs(hidden: hidden.pointer, batch: batch)
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

    /// Runs the decoder stack; returns the last layer's hidden states [T, d] (before the final norm).
    func forwardHidden(_ batch: PackedBatch) -> AlignedBuffer<Float> {
        let c = config
        let T = batch.tokenCount, d = c.hiddenSize
        let ws = Workspace(config: c, tokens: T, longest: batch.longest)
        let w = weights

        // x[T, d] = embedding rows of the tokens
        batch.tokens.withUnsafeBufferPointer { tokens in
            Parallel.forRanges(T) { rows in
                for t in rows {
                    (ws.x.pointer + t * d).update(from: w + layout.embedding + Int(tokens[t]) * d, count: d)
                }
            }
        }
        for layer in layout.layers {
            attentionBlock(layer, batch: batch, ws: ws)
            mlpBlock(layer, tokens: T, ws: ws)
        }
        return ws.x
    }

    /// x += o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = rmsnorm(x).
    private func attentionBlock(_ layer: LlamaLayout.Layer, batch: PackedBatch, ws: Workspace) {
        let c = config
        let T = batch.tokenCount, d = c.hiddenSize
        rmsNorm(ws.x.pointer, weight: layer.attentionNorm, rows: T, into: ws.normed.pointer)
        linear(ws.normed.pointer, rows: T, inFeatures: d, weight: layer.q, bias: layer.qBias, outFeatures: c.qDim, into: ws.q.pointer)
        linear(ws.normed.pointer, rows: T, inFeatures: d, weight: layer.k, bias: layer.kBias, outFeatures: c.kvDim, into: ws.k.pointer)
        linear(ws.normed.pointer, rows: T, inFeatures: d, weight: layer.v, bias: layer.vBias, outFeatures: c.kvDim, into: ws.v.pointer)
        batch.positions.withUnsafeBufferPointer { positions in
            let (cosTable, sinTable) = (rope.cos.pointer, rope.sin.pointer)
            Parallel.forRanges(T) { rows in
                let p = positions.baseAddress! + rows.lowerBound
                srppo_rope_forward(ws.q.pointer + rows.lowerBound * c.qDim, Int32(rows.count), Int32(c.qDim),
                                   Int32(c.numHeads), Int32(c.headDim), p, cosTable, sinTable)
                srppo_rope_forward(ws.k.pointer + rows.lowerBound * c.kvDim, Int32(rows.count), Int32(c.kvDim),
                                   Int32(c.numKVHeads), Int32(c.headDim), p, cosTable, sinTable)
            }
        }
        attention(batch: batch, ws: ws)
        linear(ws.attention.pointer, rows: T, inFeatures: c.qDim, weight: layer.o, bias: layer.oBias,
               outFeatures: d, into: ws.x.pointer, accumulate: true)
    }

    /// Causal grouped-query attention of every sequence and head: [T, H·e] from q [T, H·e], k, v [T, G·e].
    private func attention(batch: PackedBatch, ws: Workspace) {
        let c = config
        let e = c.headDim, H = c.numHeads, group = c.numHeads / c.numKVHeads
        let scale = Float(1.0 / Double(e).squareRoot())
        let tasks = batch.starts.count * H
        let workers = min(Parallel.threads, tasks)
        let scoresStride = batch.longest * batch.longest
        batch.starts.withUnsafeBufferPointer { starts in
            batch.lengths.withUnsafeBufferPointer { lengths in
                Parallel.forEach(workers) { worker in
                    let scores = ws.scores.pointer + worker * scoresStride
                    // Interleaved tasks: the heads of one sequence cost the same, so each worker gets
                    // an even share of long and short sequences.
                    var task = worker
                    while task < tasks {
                        let s = task / H, h = task % H, g = h / group
                        let start = starts[s], L = lengths[s]
                        let q = ws.q.pointer + start * c.qDim + h * e
                        let k = ws.k.pointer + start * c.kvDim + g * e
                        let v = ws.v.pointer + start * c.kvDim + g * e
                        // scores[L, L] = q_h · k_g^T, then causal softmax by rows
                        Gemm.multiplySerial(m: L, n: L, k: e, a: q, lda: c.qDim, b: k, ldb: c.kvDim, transB: .transposed,
                                            c: scores, ldc: L)
                        srppo_softmax_causal(scores, Int32(L), Int32(L), Int32(L), 0, scale)
                        // out_h[L, e] = scores · v_g
                        Gemm.multiplySerial(m: L, n: e, k: L, a: scores, lda: L, b: v, ldb: c.kvDim,
                                            c: ws.attention.pointer + start * c.qDim + h * e, ldc: c.qDim)
                        task += workers
                    }
                }
            }
        }
    }

    /// x += down(silu(gate(n)) * up(n)),  n = rmsnorm(x).
    private func mlpBlock(_ layer: LlamaLayout.Layer, tokens T: Int, ws: Workspace) {
        let c = config
        let d = c.hiddenSize, f = c.intermediateSize
        rmsNorm(ws.x.pointer, weight: layer.mlpNorm, rows: T, into: ws.normed.pointer)
        linear(ws.normed.pointer, rows: T, inFeatures: d, weight: layer.gate, bias: nil, outFeatures: f, into: ws.gate.pointer)
        linear(ws.normed.pointer, rows: T, inFeatures: d, weight: layer.up, bias: nil, outFeatures: f, into: ws.up.pointer)
        Parallel.forRanges(T * f, align: 64) { range in
            let start = range.lowerBound
            srppo_swiglu_forward(ws.gate.pointer + start, ws.gate.pointer + start, ws.up.pointer + start, range.count)
        }
        linear(ws.gate.pointer, rows: T, inFeatures: f, weight: layer.down, bias: nil, outFeatures: d,
               into: ws.x.pointer, accumulate: true)
    }

    /// Log-probs at the scored positions: final norm and LM head on those rows only, in chunks so the
    /// [rows, V] logits stay small.
    func lmHeadLogProbs(hidden: UnsafeMutablePointer<Float>, batch: PackedBatch) -> [[Float]] {
        let c = config
        let d = c.hiddenSize, V = c.vocabSize
        let P = batch.scoredRows.count
        // Row t of the hidden states predicts token t + 1.
        let gathered = AlignedBuffer<Float>(count: P * d)
        for (i, row) in batch.scoredRows.enumerated() {
            (gathered.pointer + i * d).update(from: hidden + row * d, count: d)
        }
        rmsNorm(gathered.pointer, weight: layout.finalNorm, rows: P, into: gathered.pointer)

        var flat = [Float](repeating: 0, count: P)
        let chunk = 64
        let logits = AlignedBuffer<Float>(count: min(chunk, P) * V)
        let logSumExp = AlignedBuffer<Float>(count: chunk)
        var start = 0
        while start < P {
            let rows = min(chunk, P - start)
            Gemm.multiply(m: rows, n: V, k: d, a: gathered.pointer + start * d, lda: d,
                          b: weights + layout.lmHead, ldb: d, transB: .transposed, c: logits.pointer, ldc: V)
            Parallel.forRanges(rows) { r in
                srppo_logsumexp_rows(logSumExp.pointer + r.lowerBound, logits.pointer + r.lowerBound * V,
                                     Int32(r.count), Int32(V), Int32(V))
            }
            for r in 0..<rows {
                let target = Int(batch.scoredTargets[start + r])
                flat[start + r] = logits.pointer[r * V + target] - logSumExp.pointer[r]
            }
            start += rows
        }
        var result: [[Float]] = []
        var offset = 0
        for count in batch.scoredCounts {
            result.append(Array(flat[offset..<offset + count]))
            offset += count
        }
        return result
    }

    // MARK: Building blocks

    /// y[rows, d] = rmsnorm(x) * weight (in place allowed).
    func rmsNorm(_ x: UnsafeMutablePointer<Float>, weight: Int, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let d = config.hiddenSize
        let eps = Float(config.rmsNormEps)
        let w = weights + weight
        Parallel.forRanges(rows) { r in
            srppo_rmsnorm_forward(y + r.lowerBound * d, nil, x + r.lowerBound * d, w, Int32(r.count), Int32(d), eps)
        }
    }

    /// y[rows, out] = x[rows, in] · W^T + bias, or y += that when `accumulate`. W is [out, in].
    func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: Int, bias: Int?,
                outFeatures: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        Gemm.multiply(m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
                      b: weights + weight, ldb: inFeatures, transB: .transposed,
                      c: y, ldc: outFeatures, beta: accumulate ? 1 : 0)
        if let bias {
            let b = weights + bias
            for r in 0..<rows { srppo_add_inplace(y + r * outFeatures, b, outFeatures) }
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

/// A batch flattened into one token list, with where each sequence starts and which rows are scored.
struct PackedBatch {
    var tokens: [Int32] = []
    var positions: [Int32] = []
    var starts: [Int] = []
    var lengths: [Int] = []
    var longest = 0
    /// Hidden-state rows whose next token is scored, and that token, in request order.
    var scoredRows: [Int] = []
    var scoredTargets: [Int32] = []
    var scoredCounts: [Int] = []

    var tokenCount: Int { tokens.count }

    init(_ requests: [ScoringRequest]) {
        for r in requests {
            let start = tokens.count
            starts.append(start)
            lengths.append(r.tokens.count)
            longest = max(longest, r.tokens.count)
            tokens += r.tokens
            positions += (0..<r.tokens.count).map { Int32($0) }
            for i in r.firstScored..<r.tokens.count {
                scoredRows.append(start + i - 1)
                scoredTargets.append(r.tokens[i])
            }
            scoredCounts.append(r.tokens.count - r.firstScored)
        }
    }
}

/// Activations of one forward pass.
final class Workspace {
    let x, normed, q, k, v, attention, gate, up, scores: AlignedBuffer<Float>

    init(config c: LlamaConfig, tokens T: Int, longest: Int) {
        x = AlignedBuffer(count: T * c.hiddenSize)
        normed = AlignedBuffer(count: T * c.hiddenSize)
        q = AlignedBuffer(count: T * c.qDim)
        k = AlignedBuffer(count: T * c.kvDim)
        v = AlignedBuffer(count: T * c.kvDim)
        attention = AlignedBuffer(count: T * c.qDim)
        gate = AlignedBuffer(count: T * c.intermediateSize)
        up = AlignedBuffer(count: T * c.intermediateSize)
        scores = AlignedBuffer(count: Parallel.threads * longest * longest)
    }
}

/// cos/sin of every position's RoPE angles, [positions, e/2], computed in double precision.
final class RopeTables: @unchecked Sendable {
    let cos: AlignedBuffer<Float>
    let sin: AlignedBuffer<Float>

    init(config c: LlamaConfig) {
        let half = c.headDim / 2
        var inverseFrequencies = (0..<half).map { i in 1.0 / Foundation.pow(c.ropeTheta, Double(2 * i) / Double(c.headDim)) }
        switch c.ropeScaling {
        case nil: break
        case let .linear(factor)?:
            inverseFrequencies = inverseFrequencies.map { $0 / factor }
        case let .llama3(factor, low, high, original)?:
            let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
            inverseFrequencies = inverseFrequencies.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        let positions = c.maxPositions
        cos = AlignedBuffer(count: positions * half)
        sin = AlignedBuffer(count: positions * half)
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Double(p) * inverseFrequencies[i]
                cos.pointer[p * half + i] = Float(Foundation.cos(angle))
                sin.pointer[p * half + i] = Float(Foundation.sin(angle))
            }
        }
    }
}
