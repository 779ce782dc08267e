import Compute

/// A batch flattened into one token list, with where each sequence starts and which rows are scored.
///
/// A sequence may continue another one (prefix sharing): it then holds only the tokens after a shared
/// prompt, its positions start after the prompt, and its attention sees the prompt sequence's keys and
/// values first (`contexts`, `prefixStarts`).
struct PackedBatch {
    var tokens: [Int32] = []
    var positions: [Int32] = []
    var starts: [Int] = []
    var lengths: [Int] = []
    /// Tokens of shared prompt each sequence continues (0: none), and the row where that prompt starts.
    var contexts: [Int] = []
    var prefixStarts: [Int] = []
    /// Largest context + length: positions and attention keys of one sequence.
    var longest = 0
    /// Hidden-state rows whose next token is scored, and that token, in request order.
    var scoredRows: [Int] = []
    var scoredTargets: [Int32] = []
    /// Scored rows per request.
    var scoredCounts: [Int] = []
    /// Row ranges the projections multiply as one GEMM each. Unmixed (no shared prompt), each
    /// sequence's rows on their own: a row's result then depends only on its sequence, so a request
    /// scores the same bits in any batch. Mixed (a shared prompt, which already gives up equality
    /// with scoring each request alone), the whole batch in blocks of about `mixedSegmentRows`, a
    /// fixed function of the row count, not of the thread count: larger products run faster
    /// (measured in BENCHMARKS.md).
    var gemmSegments: [Range<Int>] = []
    /// Whether the projections may use the model's bf16 weights (false: fp32, e.g. the prefill of
    /// generation, whose decode steps are fp32).
    var allowsBF16 = true
    /// The sequences grouped by the keys and values they attend to: each shared prompt followed by
    /// its continuations, and every other sequence on its own; in batch order (the attention
    /// backward's tasks).
    private(set) var prefixFamilies: [[Int]] = []

    var tokenCount: Int { tokens.count }
    var sequenceCount: Int { starts.count }

    init(_ requests: [ScoringRequest], sharePrefixes: Bool = false) {
        // With sharing: for each distinct prompt asked by two or more requests, where its sequence starts.
        var sharedPrompt: [ArraySlice<Int32>: Int] = [:]
        // For each shared prompt's start row, its family's index in `prefixFamilies`.
        var familyOfPromptStart: [Int: Int] = [:]
        if sharePrefixes {
            var uses: [ArraySlice<Int32>: Int] = [:]
            for r in requests { uses[r.tokens[..<r.firstScored], default: 0] += 1 }
            for r in requests {
                let prompt = r.tokens[..<r.firstScored]
                guard uses[prompt]! >= 2, sharedPrompt[prompt] == nil else { continue }
                sharedPrompt[prompt] = tokens.count
                familyOfPromptStart[tokens.count] = prefixFamilies.count
                prefixFamilies.append([sequenceCount])
                append(prompt, context: 0, prefixStart: 0)
            }
        }
        for r in requests {
            let prompt = r.tokens[..<r.firstScored]
            if let prefixStart = sharedPrompt[prompt] {
                let P = prompt.count, start = tokens.count
                prefixFamilies[familyOfPromptStart[prefixStart]!].append(sequenceCount)
                append(r.tokens[P...], context: P, prefixStart: prefixStart)
                for i in P..<r.tokens.count {
                    scoredRows.append(i == P ? prefixStart + P - 1 : start + i - 1 - P)
                    scoredTargets.append(r.tokens[i])
                }
            } else {
                let start = tokens.count
                prefixFamilies.append([sequenceCount])
                append(r.tokens[...], context: 0, prefixStart: 0)
                for i in r.firstScored..<r.tokens.count {
                    scoredRows.append(start + i - 1)
                    scoredTargets.append(r.tokens[i])
                }
            }
            scoredCounts.append(r.tokens.count - r.firstScored)
        }
        gemmSegments = mixesSequences ? LlamaModel.blocks(tokenCount, width: Self.mixedSegmentRows)
                                      : zip(starts, lengths).map { start, length in start..<start + length }
    }

    private mutating func append(_ sequence: ArraySlice<Int32>, context: Int, prefixStart: Int) {
        starts.append(tokens.count)
        lengths.append(sequence.count)
        contexts.append(context)
        prefixStarts.append(prefixStart)
        longest = max(longest, context + sequence.count)
        tokens += sequence
        positions += (context..<context + sequence.count).map { Int32($0) }
    }


    /// Whether rows of different sequences may share a GEMM (see `gemmSegments`): a sequence
    /// continues a shared prompt.
    var mixesSequences: Bool { contexts.contains { $0 > 0 } }

    static let mixedSegmentRows = 512

    /// Ranges of scored rows, at most `maxRows` each; unless sequences are mixed, never spanning two
    /// requests (for the reason given at `gemmSegments`).
    func scoredChunks(maxRows: Int) -> [Range<Int>] {
        var chunks: [Range<Int>] = []
        var start = 0
        for count in mixesSequences ? [scoredRows.count] : scoredCounts {
            var offset = 0
            while offset < count {
                let n = min(maxRows, count - offset)
                chunks.append(start + offset..<start + offset + n)
                offset += n
            }
            start += count
        }
        return chunks
    }
}

/// What one decoder layer writes during the forward pass. Inference reuses one set for every layer;
/// training keeps one per layer (with `input` and `middle`, the residual entering the layer and
/// after its attention block) for the backward, or only the inputs when recomputing.
final class LayerActivations {
    /// The residual stream entering the layer [T, d]; kept only for training.
    let input: AlignedBuffer<Float>?
    /// The residual stream after the attention block [T, d]; kept only for training.
    let middle: AlignedBuffer<Float>?
    let attentionNormed: AlignedBuffer<Float>   // [T, d]
    let attentionRstd: AlignedBuffer<Float>     // [T]
    let qkv: AlignedBuffer<Float>               // [T, H·e + 2·G·e], q and k after RoPE
    let attention: AlignedBuffer<Float>         // [T, H·e]
    let mlpNormed: AlignedBuffer<Float>         // [T, d]
    let mlpRstd: AlignedBuffer<Float>           // [T]
    let gateUp: AlignedBuffer<Float>            // [T, 2f]
    let hidden: AlignedBuffer<Float>            // [T, f]

    init(config c: LlamaConfig, tokens T: Int, keepResiduals: Bool = false) {
        input = keepResiduals ? AlignedBuffer(count: T * c.hiddenSize) : nil
        middle = keepResiduals ? AlignedBuffer(count: T * c.hiddenSize) : nil
        attentionNormed = AlignedBuffer(count: T * c.hiddenSize)
        attentionRstd = AlignedBuffer(count: T)
        qkv = AlignedBuffer(count: T * c.qkvDim)
        attention = AlignedBuffer(count: T * c.qDim)
        mlpNormed = AlignedBuffer(count: T * c.hiddenSize)
        mlpRstd = AlignedBuffer(count: T)
        gateUp = AlignedBuffer(count: T * 2 * c.intermediateSize)
        hidden = AlignedBuffer(count: T * c.intermediateSize)
    }

    /// Activations that share every buffer with `other` except the saved residuals (recompute mode:
    /// each layer keeps its own input, the rest is scratch rebuilt before the layer's backward).
    init(sharing other: LayerActivations, input: AlignedBuffer<Float>) {
        self.input = input
        middle = other.middle
        attentionNormed = other.attentionNormed
        attentionRstd = other.attentionRstd
        qkv = other.qkv
        attention = other.attention
        mlpNormed = other.mlpNormed
        mlpRstd = other.mlpRstd
        gateUp = other.gateUp
        hidden = other.hidden
    }
}
