import Foundation
import Compute
import TestSupport
import Transformer
import XCTest

final class GenerationTests: XCTestCase {
    /// Prompts of different lengths (1 to 45 tokens) for the tiny models.
    private func prompts(_ count: Int, vocab: Int) -> [[Int32]] {
        (0..<count).map { i in TinyModels.randomTokens(1 + (i * 11) % 45, vocab: vocab, seed: 100 + UInt64(i)) }
    }

    /// Largest |generation's raw log-prob − scoring's log-prob| over all tokens of all results.
    private func worstScoringMismatch(_ model: LlamaModel, prompts: [[Int32]], results: [GeneratedSequence]) throws -> Float {
        let scored = try model.logProbs(zip(prompts, results).map { ScoringRequest(prompt: $0, response: $1.tokens) })
        var worst: Float = 0
        for (result, reference) in zip(results, scored) {
            XCTAssertEqual(result.rawLogProbs.count, reference.count)
            for (a, b) in zip(result.rawLogProbs, reference) { worst = max(worst, abs(a - b)) }
        }
        return worst
    }

    /// The must-show consistency: each generated token's raw log-prob equals the engine's score of the
    /// finished sequence, for greedy and sampled decoding, on every architecture variant and with LoRA
    /// adapters (random, non-zero B) active in both paths.
    func testRawLogProbsEqualScoringOfTheFinishedSequence() throws {
        let lora = TinyModels.model(TinyModels.config(), seed: 5)
        lora.adapters = LoRAAdapters(config: LoRAConfig(rank: 4, alpha: 8), model: lora.config, seed: 9)
        var rng = SeededGenerator(seed: 3)
        let adapters = lora.adapters!
        for i in 0..<adapters.parameterCount { adapters.parameters.pointer[i] = 0.3 * rng.nextNormal() }
        let models: [(String, LlamaModel)] = [
            ("llama tied", TinyModels.model(TinyModels.config(), seed: 7)),
            ("llama separate head", TinyModels.model(TinyModels.config(tied: false), seed: 8)),
            ("qwen2 biases", TinyModels.model(TinyModels.config(.qwen2), seed: 9)),
            ("llama3 rope", TinyModels.model(TinyModels.config(ropeScaling: .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4,
                                                                                      originalMaxPositions: 16)), seed: 10)),
            ("lora", lora),
        ]
        let settings: [(String, SamplingParameters)] = [
            ("greedy", .greedy),
            ("temperature 1", SamplingParameters()),
            ("truncated", SamplingParameters(topK: 20, topP: 0.9, minP: 0.01)),
            ("cold truncated", SamplingParameters(temperature: 0.7, topK: 10, topP: 0.8)),
        ]
        for (name, model) in models {
            let prompts = prompts(6, vocab: model.config.vocabSize)
            for (setting, sampling) in settings {
                let requests = prompts.enumerated().map { i, p in
                    GenerationRequest(prompt: p, maxNewTokens: 40 + i, sampling: sampling, seed: UInt64(i), endTokens: [])
                }
                let results = try Generator(model: model, maxBatch: 4).generate(requests)
                XCTAssertEqual(results.map(\.tokens.count), requests.map(\.maxNewTokens), "\(name) \(setting)")
                XCTAssertLessThanOrEqual(try worstScoringMismatch(model, prompts: prompts, results: results), 1e-4, "\(name) \(setting)")
                for result in results {
                    XCTAssertEqual(result.finishReason, .length)
                    switch setting {
                    case "greedy": XCTAssertEqual(result.logProbs, [Float](repeating: 0, count: result.tokens.count))
                    case "temperature 1":
                        for (a, b) in zip(result.logProbs, result.rawLogProbs) { XCTAssertEqual(a, b, accuracy: 1e-5) }
                    case "truncated":
                        // At temperature 1, truncation raises every kept token's probability above its raw one.
                        for (a, b) in zip(result.logProbs, result.rawLogProbs) { XCTAssertGreaterThan(a, b - 1e-5) }
                    default:
                        XCTAssertTrue(result.logProbs.allSatisfy { $0 <= 0 })
                    }
                }
            }
        }
    }

    /// Greedy decoding picks the arg-max of the engine's own next-token distribution at every step:
    /// checked against the float64 reference forward on the finished sequence.
    func testGreedyTokensAreTheReferenceArgMax() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config, seed: 7)
        let prompt = TinyModels.randomTokens(9, vocab: config.vocabSize, seed: 4)
        let result = try Generator(model: model).generate([GenerationRequest(prompt: prompt, maxNewTokens: 12, sampling: .greedy, endTokens: [])])[0]
        let naive = NaiveLlama(model)
        var context = prompt
        for token in result.tokens {
            let next = (0..<Int32(config.vocabSize)).map { naive.logProbs(tokens: context + [$0], firstScored: context.count)[0] }
            let best = next.indices.max { next[$0] < next[$1] }!
            XCTAssertEqual(Int(token), best)
            context.append(token)
        }
    }

    /// The must-show reproducibility: a request's tokens and log-probs are bit-identical alone, in a
    /// batch of 8 (with more requests waiting to join as others finish), in another order, and on
    /// 1, 2 or 3 threads.
    func testSameSeedGivesSameTokensAloneOrInABatchOfEight() throws {
        let config = TinyModels.config(.qwen2)
        let model = TinyModels.model(config, seed: 11)
        let sampling = SamplingParameters(temperature: 1.1, topP: 0.95)
        let requests = prompts(11, vocab: config.vocabSize).enumerated().map { i, p in
            GenerationRequest(prompt: p, maxNewTokens: 10 + 5 * i, sampling: sampling, seed: 1000 + UInt64(i), endTokens: [])
        }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 2
        let alone = try requests.map { try Generator(model: model, maxBatch: 1).generate([$0])[0] }
        // The seeds matter: different seeds give different tokens.
        XCTAssertNotEqual(alone[0].tokens, try Generator(model: model).generate([{ var r = requests[0]; r.seed = 1; return r }()])[0].tokens)
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            let batched = try Generator(model: model, maxBatch: 8).generate(requests)
            XCTAssertEqual(batched, alone, "threads \(threads)")
            let reversed = try Generator(model: model, maxBatch: 8).generate(requests.reversed())
            XCTAssertEqual(Array(reversed.reversed()), alone, "threads \(threads), reversed order")
        }
    }

    /// A model on a bf16 weight image generates in bf16 (prefill and decoding steps through the bf16
    /// GEMM): a request's tokens are the same alone, in a batch and on any thread count, and each
    /// token's raw log-prob is the bf16 model's score of the finished sequence up to a flipped bf16
    /// rounding: decoding's attention (one query at a time) and scoring's (blocks of queries) differ in
    /// the last fp32 bits, and where that crosses a bf16 rounding boundary of an activation fed to a
    /// bf16 product, it moves by 2⁻⁹ of itself (as with shared prefixes, ScoringVariantsTests). So the
    /// bound is a fraction of bf16's own distance from fp32, not fp32's 1e-4.
    func testGenerationOnABF16ImageIsBatchInvariantAndMatchesItsScoring() throws {
        let config = TinyModels.config(.qwen2, tied: false)
        let model = TinyModels.onBF16Image(TinyModels.model(config, seed: 11))
        model.adapters = LoRAAdapters(config: LoRAConfig(rank: 4, alpha: 8), model: config, seed: 9)
        var rng = SeededGenerator(seed: 3)
        for i in 0..<model.adapters!.parameterCount { model.adapters!.parameters.pointer[i] = 0.3 * rng.nextNormal() }
        let prompts = prompts(9, vocab: config.vocabSize)
        let requests = prompts.enumerated().map { i, p in
            GenerationRequest(prompt: p, maxNewTokens: 10 + 3 * i, sampling: SamplingParameters(temperature: 1.1), seed: 500 + UInt64(i), endTokens: [])
        }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 2
        let alone = try requests.map { try Generator(model: model, maxBatch: 1).generate([$0])[0] }
        for threads in [1, 3] {
            Parallel.threads = threads
            XCTAssertEqual(try Generator(model: model, maxBatch: 4).generate(requests), alone, "threads \(threads)")
        }
        let fp32 = TinyModels.model(config, seed: 11)
        fp32.adapters = model.adapters
        let scoring = zip(prompts, alone).map { ScoringRequest(prompt: $0, response: $1.tokens) }
        let bf16Deviation = zip(try model.logProbs(scoring).joined(), try fp32.logProbs(scoring).joined()).map { abs($0 - $1) }.max()!
        let mismatch = try worstScoringMismatch(model, prompts: prompts, results: alone)
        print("bf16 image: generation vs scoring \(mismatch), bf16 vs fp32 scoring \(bf16Deviation)")
        XCTAssertLessThan(mismatch, bf16Deviation / 4)
    }

    func testStopConditionsAndFinishReasons() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config, seed: 7)
        let prompt = TinyModels.randomTokens(5, vocab: config.vocabSize, seed: 2)
        func run(_ request: GenerationRequest, onToken: ((Int, Int32) -> Bool)? = nil) throws -> GeneratedSequence {
            try Generator(model: model).generate([request], onToken: onToken)[0]
        }
        let free = try run(GenerationRequest(prompt: prompt, maxNewTokens: 30, sampling: SamplingParameters(), seed: 5, endTokens: []))
        XCTAssertEqual(free.finishReason, .length)
        XCTAssertEqual(free.tokens.count, 30)

        // An end token stops at its first occurrence and is kept.
        let end = free.tokens[7]
        let first = free.tokens.firstIndex(of: end)!
        let ended = try run(GenerationRequest(prompt: prompt, maxNewTokens: 30, sampling: SamplingParameters(), seed: 5, endTokens: [end]))
        XCTAssertEqual(ended.finishReason, .eos)
        XCTAssertEqual(ended.tokens, Array(free.tokens[...first]))
        XCTAssertEqual(ended.rawLogProbs, Array(free.rawLogProbs[...first]))

        // The model's own EOS tokens are the default end tokens.
        var eosConfig = config
        eosConfig.eosTokenIds = [Int(end)]
        let eosModel = LlamaModel(config: eosConfig, storage: model.storage)
        let byDefault = try Generator(model: eosModel).generate([GenerationRequest(prompt: prompt, maxNewTokens: 30, seed: 5)])[0]
        XCTAssertEqual(byDefault, ended)

        // A stop sequence stops right after it.
        let stop = Array(free.tokens[10...12])
        let stopped = try run(GenerationRequest(prompt: prompt, maxNewTokens: 30, sampling: SamplingParameters(), seed: 5, endTokens: [],
                                                stopSequences: [[Int32(config.vocabSize - 1), 0, 0], stop]))
        XCTAssertEqual(stopped.finishReason, .stop)
        let stopEnd = (2..<free.tokens.count).first { Array(free.tokens[($0 - 2)...$0]) == stop }!
        XCTAssertEqual(stopped.tokens, Array(free.tokens[...stopEnd]))

        // The caller can stop a sequence (stop strings); it sees every token first.
        var seen: [Int32] = []
        let called = try run(GenerationRequest(prompt: prompt, maxNewTokens: 30, sampling: SamplingParameters(), seed: 5, endTokens: [])) { _, token in
            seen.append(token)
            return seen.count == 4
        }
        XCTAssertEqual(called.finishReason, .stop)
        XCTAssertEqual(called.tokens, Array(free.tokens[..<4]))
        XCTAssertEqual(seen, called.tokens)

        let none = try run(GenerationRequest(prompt: prompt, maxNewTokens: 0))
        XCTAssertEqual(none, GeneratedSequence())
    }

    /// A sequence that finishes early leaves the batch: the others go on with identical results, and
    /// every request comes back in its own slot.
    func testFinishedSequencesLeaveWithoutDisturbingOthers() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config, seed: 7)
        let prompts = prompts(5, vocab: config.vocabSize)
        let long = prompts.map { GenerationRequest(prompt: $0, maxNewTokens: 25, sampling: SamplingParameters(), seed: 9, endTokens: []) }
        var mixed = long
        mixed[1].maxNewTokens = 2
        mixed[3].maxNewTokens = 1
        let reference = try Generator(model: model).generate(long)
        let results = try Generator(model: model).generate(mixed)
        for i in [0, 2, 4] { XCTAssertEqual(results[i], reference[i]) }
        XCTAssertEqual(results[1].tokens, Array(reference[1].tokens.prefix(2)))
        XCTAssertEqual(results[3].tokens, Array(reference[3].tokens.prefix(1)))
    }

    func testInvalidRequestsGiveTypedErrors() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config)
        func message(_ r: GenerationRequest) -> String {
            do { _ = try Generator(model: model).generate([GenerationRequest(prompt: [1], maxNewTokens: 1), r]); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(GenerationRequest(prompt: [], maxNewTokens: 3)), "request 1: empty prompt: at least one token is needed")
        XCTAssertEqual(message(GenerationRequest(prompt: [1, 67], maxNewTokens: 3)),
                       "request 1: prompt token 1 (67) is outside the vocabulary (0..<67)")
        XCTAssertEqual(message(GenerationRequest(prompt: [1, 2], maxNewTokens: 127)),
                       "request 1: prompt of 2 tokens + 127 new tokens exceeds the model's context of 128")
        XCTAssertEqual(message(GenerationRequest(prompt: [1], maxNewTokens: 3, sampling: SamplingParameters(topP: 0))),
                       "request 1: sampling parameter top_p must be in (0, 1], got 0.0")
        XCTAssertEqual(message(GenerationRequest(prompt: [1], maxNewTokens: 3, sampling: SamplingParameters(temperature: -1))),
                       "request 1: sampling parameter temperature must be 0 (greedy) or at least 1e-06, got -1.0")
        XCTAssertEqual(message(GenerationRequest(prompt: [1], maxNewTokens: 3, stopSequences: [[70]])),
                       "request 1: stop token id 70 is outside the vocabulary (0..<67)")
    }
}
