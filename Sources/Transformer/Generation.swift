import Foundation
import Compute

/// One prompt to continue.
public struct GenerationRequest: Sendable, Equatable {
    public var prompt: [Int32]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Seeds this sequence's own random stream: the same seed gives the same tokens whatever else is
    /// generated alongside.
    public var seed: UInt64
    /// Tokens that end the sequence (kept as its last token); nil: the model's EOS tokens.
    public var endTokens: Set<Int32>?
    /// Token sequences that end the sequence when it ends with one of them (kept in the output).
    public var stopSequences: [[Int32]]

    public init(prompt: [Int32], maxNewTokens: Int, sampling: SamplingParameters = SamplingParameters(), seed: UInt64 = 0,
                endTokens: Set<Int32>? = nil, stopSequences: [[Int32]] = []) {
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.seed = seed
        self.endTokens = endTokens
        self.stopSequences = stopSequences
    }
}

/// Why a sequence stopped.
public enum FinishReason: String, Codable, Sendable {
    /// It produced an end token (EOS).
    case eos
    /// It ended with a stop sequence, or the caller stopped it (a stop string in its text).
    case stop
    /// It reached its maximum number of new tokens.
    case length
}

/// A finished continuation: its tokens (with the end token or stop sequence that ended it), and per
/// token the log-probability under the sampling distribution and under the raw model (temperature 1,
/// nothing truncated) — the latter equals what `LlamaModel.logProbs` gives for the same tokens.
public struct GeneratedSequence: Sendable, Equatable {
    public var tokens: [Int32]
    public var logProbs: [Float]
    public var rawLogProbs: [Float]
    public var finishReason: FinishReason

    public init(tokens: [Int32] = [], logProbs: [Float] = [], rawLogProbs: [Float] = [], finishReason: FinishReason = .length) {
        self.tokens = tokens
        self.logProbs = logProbs
        self.rawLogProbs = rawLogProbs
        self.finishReason = finishReason
    }
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case badSampling(parameter: String, problem: String)
    case badRequest(request: Int, problem: String)

    public var description: String {
        switch self {
        case let .badSampling(parameter, problem): return "sampling parameter \(parameter) \(problem)"
        case let .badRequest(request, problem): return "request \(request): \(problem)"
        }
    }
}

/// Batched sampling with a KV cache.
///
/// Up to `maxBatch` sequences decode together, one token each per step (one set of matrix products
/// for all of them); a sequence that finishes leaves at once and a waiting request is prefilled into
/// its place, so short answers never wait for long ones. Results do not depend on `maxBatch`, on the
/// order or company of requests, or on the thread count (see `LlamaModel.decodeStep`).
public final class Generator {
    public let model: LlamaModel
    public let maxBatch: Int

    public init(model: LlamaModel, maxBatch: Int = 8) {
        precondition(maxBatch >= 1, "a batch holds at least one sequence")
        self.model = model
        self.maxBatch = maxBatch
    }

    /// A sequence being decoded.
    private struct Active {
        let request: Int
        let cache: KVCache
        var rng: SeededGenerator
        var output = GeneratedSequence()
    }

    /// Continues every request. `onToken(request, token)` sees each token as soon as it is chosen
    /// (for streaming); returning true ends that sequence there with finish reason `stop`.
    public func generate(_ requests: [GenerationRequest], onToken: ((Int, Int32) -> Bool)? = nil) throws -> [GeneratedSequence] {
        try validate(requests)
        var results = [GeneratedSequence](repeating: GeneratedSequence(), count: requests.count)
        var waiting = requests.indices.filter { requests[$0].maxNewTokens > 0 }[...]
        var active: [Active] = []
        let buffers = DecodeBuffers(config: model.config, rows: maxBatch, loraRank: model.adapters?.config.rank ?? 0)
        let samplers = (0..<Parallel.threads).map { _ in TokenSampler(vocabSize: model.config.vocabSize) }
        while !waiting.isEmpty || !active.isEmpty {
            let joining = Array(waiting.prefix(maxBatch - active.count))
            waiting = waiting.dropFirst(joining.count)
            if !joining.isEmpty {
                let newcomers = joining.map { i in
                    Active(request: i, cache: KVCache(config: model.config, capacity: requests[i].prompt.count + requests[i].maxNewTokens),
                           rng: SeededGenerator(seed: requests[i].seed))
                }
                let logits = AlignedBuffer<Float>(count: joining.count * model.config.vocabSize)
                model.prefill(joining.map { requests[$0].prompt }, caches: newcomers.map(\.cache), logits: logits.pointer)
                active += advance(newcomers, logits: logits.pointer, requests: requests, samplers: samplers,
                                  onToken: onToken, results: &results)
            }
            // Sequences that joined this round already chose their first token; all decode it now.
            if !active.isEmpty {
                model.decodeStep(tokens: active.map { $0.output.tokens.last! }, caches: active.map(\.cache), buffers: buffers)
                active = advance(active, logits: buffers.logits.pointer, requests: requests, samplers: samplers,
                                 onToken: onToken, results: &results)
            }
        }
        return results
    }

    /// Samples one token for each sequence from its row of `logits`, records it, and returns the
    /// sequences that go on (finished ones are written to `results`).
    private func advance(_ sequences: [Active], logits: UnsafePointer<Float>, requests: [GenerationRequest],
                         samplers: [TokenSampler], onToken: ((Int, Int32) -> Bool)?, results: inout [GeneratedSequence]) -> [Active] {
        var sequences = sequences
        let V = model.config.vocabSize
        var drawn = [SampledToken](repeating: SampledToken(token: 0, logProb: 0, rawLogProb: 0), count: sequences.count)
        sequences.withUnsafeMutableBufferPointer { seqs in
            drawn.withUnsafeMutableBufferPointer { out in
                Parallel.forEachTask(seqs.count) { worker, r in
                    out[r] = samplers[worker].sample(logits + r * V, parameters: requests[seqs[r].request].sampling, using: &seqs[r].rng)
                }
            }
        }
        var continuing: [Active] = []
        for (r, token) in drawn.enumerated() {
            var s = sequences[r]
            let request = requests[s.request]
            s.output.tokens.append(token.token)
            s.output.logProbs.append(token.logProb)
            s.output.rawLogProbs.append(token.rawLogProb)
            let stoppedByCaller = onToken?(s.request, token.token) ?? false
            let endTokens = request.endTokens ?? Set(model.config.eosTokenIds.map(Int32.init))
            var finish: FinishReason?
            if endTokens.contains(token.token) {
                finish = .eos
            } else if stoppedByCaller || request.stopSequences.contains(where: { !$0.isEmpty && s.output.tokens.ends(with: $0) }) {
                finish = .stop
            } else if s.output.tokens.count == request.maxNewTokens {
                finish = .length
            }
            if let finish {
                s.output.finishReason = finish
                results[s.request] = s.output
            } else {
                continuing.append(s)
            }
        }
        return continuing
    }

    private func validate(_ requests: [GenerationRequest]) throws {
        for (i, r) in requests.enumerated() {
            do { try r.validate(for: model.config) } catch let problem as GenerationRequest.Problem {
                throw GenerationError.badRequest(request: i, problem: problem.description)
            }
        }
    }
}

extension GenerationRequest {
    /// What is wrong with a request, in words (callers add where it came from).
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks the request against a model: prompt tokens, context length, sampling parameters.
    public func validate(for c: LlamaConfig) throws {
        func fail(_ problem: String) -> Problem { Problem(description: problem) }
        guard !prompt.isEmpty else { throw fail("empty prompt: at least one token is needed") }
        if let (position, bad) = prompt.enumerated().first(where: { $0.element < 0 || Int($0.element) >= c.vocabSize }) {
            throw fail("prompt token \(position) (\(bad)) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        do { try sampling.validate() } catch let error as GenerationError { throw fail(error.description) }
        guard maxNewTokens >= 0 else { throw fail("max_new_tokens is negative (\(maxNewTokens))") }
        guard prompt.count + maxNewTokens <= c.maxPositions else {
            throw fail("prompt of \(prompt.count) tokens + \(maxNewTokens) new tokens exceeds the model's context of \(c.maxPositions)")
        }
        if let bad = (endTokens ?? []).union(stopSequences.joined()).first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw fail("stop token id \(bad) is outside the vocabulary (0..<\(c.vocabSize))")
        }
    }
}

private extension Array where Element: Equatable {
    func ends(with suffix: [Element]) -> Bool {
        suffix.count <= count && zip(self[(count - suffix.count)...], suffix).allSatisfy { $0 == $1 }
    }
}
