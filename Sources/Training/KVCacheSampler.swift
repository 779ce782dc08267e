import Transformer

/// PPO's `ResponseSampler` over the KV-cache generator: one sequence per (prompt, seed), decoded
/// `maxBatch` at a time; a response ends at the model's EOS token or at `maxNewTokens`.
public struct KVCacheSampler: ResponseSampler {
    public var maxBatch: Int

    public init(maxBatch: Int = 8) {
        self.maxBatch = maxBatch
    }

    public func sample(_ model: LlamaModel, prompts: [[Int32]], seeds: [UInt64], maxNewTokens: Int,
                       temperature: Double, topP: Double) throws -> [SampledResponse] {
        let sampling = SamplingParameters(temperature: temperature, topP: topP)
        let requests = zip(prompts, seeds).map { GenerationRequest(prompt: $0, maxNewTokens: maxNewTokens, sampling: sampling, seed: $1) }
        return try Generator(model: model, maxBatch: maxBatch).generate(requests).map {
            SampledResponse(tokens: $0.tokens, endedWithEOS: $0.finishReason == .eos)
        }
    }
}
