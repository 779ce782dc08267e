import Transformer

/// PPO's `ResponseSampler` over the KV-cache generator: one sequence per (prompt, seed), decoded
/// `maxBatch` at a time; a response ends at one of the end tokens or at `maxNewTokens`.
public struct KVCacheSampler: ResponseSampler {
    public var maxBatch: Int

    public init(maxBatch: Int = 8) {
        self.maxBatch = maxBatch
    }

    public func sample(_ model: LlamaModel, prompts: [[Int32]], seeds: [UInt64], maxNewTokens: Int,
                       temperature: Double, endTokens: Set<Int32>) throws -> [SampledResponse] {
        let sampling = SamplingParameters(temperature: temperature)
        let requests = zip(prompts, seeds).map {
            GenerationRequest(prompt: $0, maxNewTokens: maxNewTokens, sampling: sampling, seed: $1, endTokens: endTokens)
        }
        return try Generator(model: model, maxBatch: maxBatch).generate(requests).map {
            SampledResponse(tokens: $0.tokens, endedWithEOS: $0.finishReason == .eos, logProbs: $0.logProbs)
        }
    }
}
