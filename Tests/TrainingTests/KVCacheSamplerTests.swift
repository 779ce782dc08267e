import Compute
import Training
import Transformer
import XCTest

final class KVCacheSamplerTests: XCTestCase {
    /// The sampler is the generator: same seeds, same responses and sampling log-probs, alone or
    /// together; a response ends at an end token (EOS or another, e.g. a chat end-of-turn) exactly
    /// when it says so.
    func testSamplerMatchesTheGeneratorAndFlagsEOS() throws {
        let model = SFTTests.model(seed: 4)
        let prompts: [[Int32]] = (0..<10).map { i in
            let body: [Int32] = (0..<(2 + i % 5)).map { j in Int32(3 + (j * 7 + i) % 37) }
            return [1] + body
        }
        let seeds = prompts.indices.map { UInt64(50 + $0) }
        let ends: Set<Int32> = [2, 5]
        let together = try KVCacheSampler(maxBatch: 4).sample(model, prompts: prompts, seeds: seeds, maxNewTokens: 12,
                                                              temperature: 0.8, endTokens: ends)
        for i in prompts.indices {
            let alone = try KVCacheSampler(maxBatch: 1).sample(model, prompts: [prompts[i]], seeds: [seeds[i]], maxNewTokens: 12,
                                                               temperature: 0.8, endTokens: ends)[0]
            XCTAssertEqual(alone, together[i])
            let request = GenerationRequest(prompt: prompts[i], maxNewTokens: 12, sampling: SamplingParameters(temperature: 0.8),
                                            seed: seeds[i], endTokens: ends)
            let direct = try Generator(model: model).generate([request])[0]
            XCTAssertEqual(direct.tokens, together[i].tokens)
            XCTAssertEqual(direct.logProbs, together[i].logProbs)
            XCTAssertEqual(together[i].endedWithEOS, together[i].tokens.last.map(ends.contains) ?? false)
            XCTAssertEqual(together[i].endedWithEOS, direct.finishReason == FinishReason.eos)
        }
        XCTAssertTrue(together.contains { $0.tokens.last == 5 }, "no response ended at the second end token: pick other seeds")
    }

    /// A LoRA actor samples through its adapters: the same tokens as the model with the adapters
    /// merged, and different ones from the base alone.
    func testLoRAActorSamplesThroughItsAdapters() throws {
        let model = SFTTests.model(seed: 6)
        let lora = LoRAAdapters(config: LoRAConfig(rank: 4, alpha: 8), model: model.config, seed: 3)
        var rng = SeededGenerator(seed: 8)
        for a in lora.adapters { for i in 0..<(a.outFeatures * 4) { lora.parameters.pointer[a.b + i] = 0.3 * rng.nextNormal() } }
        model.adapters = lora
        let merged = model.mergingAdapters()
        let base = SFTTests.model(seed: 6)
        let prompts: [[Int32]] = (0..<6).map { (i: Int) -> [Int32] in
            let body: [Int32] = (0..<4).map { (j: Int) -> Int32 in Int32(3 + (i * 5 + j * 3) % 37) }
            return [1] + body
        }
        let seeds = prompts.indices.map { UInt64(70 + $0) }
        func sample(_ m: LlamaModel) throws -> [SampledResponse] {
            try KVCacheSampler(maxBatch: 4).sample(m, prompts: prompts, seeds: seeds, maxNewTokens: 10, temperature: 1, endTokens: [2])
        }
        let withAdapters = try sample(model), folded = try sample(merged), plain = try sample(base)
        // Merging rounds differently from the separate adapter product; with these seeds the tokens agree.
        XCTAssertEqual(withAdapters.map(\.tokens), folded.map(\.tokens))
        XCTAssertNotEqual(withAdapters.map(\.tokens), plain.map(\.tokens))
    }
}
