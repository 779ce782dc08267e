import Client
import Foundation
import Reward
import Compute
import Training
import Transformer
import XCTest

/// PPO with the coherent reward on tiny models: where the reward goes, what happens at the
/// optimum, and that the reward rises on a learnable task.
final class PPOTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "ppo-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// PT: a random tiny model. SFT: the same start after a short SFT on the reversal task (it has
    /// learned the task only partly, so sampling at temperature 1 leaves room for PPO).
    static let pair: (pt: LlamaModel, sft: LlamaModel) = {
        var c = SFTConfig()
        c.epochs = 8
        c.batchSize = 8
        c.learningRate = 3e-3
        c.warmupRatio = 0.1
        c.evalEvery = 1000
        c.checkpointEvery = 1000
        let folder = NSTemporaryDirectory() + "ppo-tests-sft-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trainer = try! SFTTrainer(model: SFTTests.model(), examples: SFTTests.examples(200, seed: 3), config: c,
                                      run: RunFolder(path: folder))
        try! trainer.run()
        return (SFTTests.model(), trainer.model)
    }()

    static func prompts(_ count: Int, seed: UInt64 = 21) -> [TokenizedExample] {
        SFTTests.examples(count, seed: seed).map { TokenizedExample(prompt: $0.tokens.prompt, response: [], source: $0.source) }
    }

    static func config(steps: Int) -> PPOConfig {
        var c = PPOConfig()
        c.steps = steps
        c.promptsPerStep = 16
        c.samplesPerPrompt = 4
        c.maxNewTokens = 8
        c.miniBatchSize = 16
        c.epochs = 2
        c.actorLearningRate = 1e-3
        c.criticLearningRate = 3e-3
        c.checkpointEvery = 1000
        c.seed = 5
        return c
    }

    func trainer(pt: LlamaModel, sft: LlamaModel, config: PPOConfig, sampler: ResponseSampler = KVCacheSampler(maxBatch: 8),
                 scorer: RewardScorer? = nil, endTokens: Set<Int32>? = nil) throws -> PPOTrainer {
        try PPOTrainer(sft: sft, prompts: Self.prompts(32), scorer: scorer ?? EmbeddedScorer(pt: pt, sft: sft), sampler: sampler,
                       endTokens: endTokens, config: config, run: RunFolder(path: directory + "/run-\(UUID().uuidString)"))
    }

    static func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }

    // MARK: Where the reward goes

    /// Responses of different lengths in one step, some ending in EOS and some cut off, with the PAD
    /// token (≠ EOS) inside and at the end of responses: the scorer sees exactly the sampled tokens
    /// (no padding), the coherent reward sits on the EOS index only, a response that ends in PAD is
    /// truncated (penalty, no coherent reward), and batched scores equal scores taken one by one.
    func testRewardSitsOnTheEOSIndexNeverOnPadding() throws {
        var config = LlamaConfig(vocabSize: 40, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                 maxPositions: 64, tieWordEmbeddings: true, bosTokenId: 1, eosTokenIds: [2])
        config.padTokenId = 0
        let (pt, sft) = (LlamaModel(config: config), LlamaModel(config: config))
        pt.weights.update(from: Self.pair.pt.weights, count: pt.layout.parameterCount)
        sft.weights.update(from: Self.pair.sft.weights, count: sft.layout.parameterCount)
        let responses: [SampledResponse] = [
            SampledResponse(tokens: [7, 9, 2], endedWithEOS: true),
            SampledResponse(tokens: [5, 0, 0, 11, 13, 2], endedWithEOS: true),  // PAD inside a response is just a token
            SampledResponse(tokens: [4, 6, 8, 0], endedWithEOS: false),          // ends in PAD: cut off, not ended
            SampledResponse(tokens: [2], endedWithEOS: true),
            SampledResponse(tokens: [3, 3, 3, 3, 3, 3, 3, 3], endedWithEOS: false),
        ]
        let scorer = RecordingScorer(try EmbeddedScorer(pt: pt, sft: sft))
        var c = Self.config(steps: 1)
        c.promptsPerStep = responses.count
        c.samplesPerPrompt = 1
        c.klCoefficient = 0  // the coherent reward alone
        c.reward.truncation = .penalty(0.5)
        let ppo = try trainer(pt: pt, sft: sft, config: c, sampler: FixedSampler(responses: responses), scorer: scorer)
        _ = try ppo.trainStep()

        XCTAssertEqual(scorer.requests.map(\.response), responses.map(\.tokens), "the scorer got padded or altered responses")
        for (request, rollout) in zip(scorer.requests, ppo.lastRollouts) {
            XCTAssertEqual(try scorer.inner.score([request])[0], rollout.scores, "a packed batch scored differently from one alone")
        }
        for (rollout, sampled) in zip(ppo.lastRollouts, responses) {
            let n = sampled.tokens.count
            XCTAssertEqual(rollout.response, sampled.tokens)
            XCTAssertEqual(rollout.rewards.count, n)
            XCTAssertEqual(rollout.values.count, n)
            XCTAssertEqual(rollout.advantages.count, n)
            let sum = zip(rollout.scores.sft, rollout.scores.pt).reduce(0.0) { $0 + Double($1.0) - Double($1.1) }
            XCTAssertEqual(rollout.coherent.sum, sum, accuracy: 1e-9)
            XCTAssertNotEqual(sum, 0)
            XCTAssertEqual(Array(rollout.rewards.dropLast()), [Double](repeating: 0, count: n - 1), "reward off the last index")
            if sampled.endedWithEOS {
                XCTAssertEqual(sampled.tokens.last, 2)
                XCTAssertEqual(rollout.rewards[n - 1], sum, accuracy: 1e-9)
            } else {
                XCTAssertEqual(rollout.rewards[n - 1], -0.5, "a truncated response gets the penalty, not the coherent reward")
            }
        }
    }

    /// A chat model ends its turns with an end-of-turn token that is not EOS (LLaMA-3, Qwen2.5 base):
    /// with it among the end tokens, the sampler stops there, the response counts as ended, and the
    /// coherent reward sits on that token instead of the response being cut off and penalized.
    func testAnEndOfTurnTokenOtherThanEOSEndsResponsesAndCarriesTheReward() throws {
        let (pt, sft) = Self.pair
        XCTAssertEqual(sft.config.eosTokenIds, [2])
        let endOfTurn: Int32 = 7
        var c = Self.config(steps: 1)
        c.klCoefficient = 0
        c.reward.truncation = .penalty(0.5)
        c.maxNewTokens = 12
        let recording = RecordingSampler(KVCacheSampler(maxBatch: 8))
        let ppo = try trainer(pt: pt, sft: sft, config: c, sampler: recording, endTokens: [2, endOfTurn])
        _ = try ppo.trainStep()
        let atEndOfTurn = ppo.lastRollouts.filter { $0.response.last == endOfTurn }
        XCTAssertGreaterThan(atEndOfTurn.count, 2, "too few responses reach the end-of-turn token to test this")
        for rollout in atEndOfTurn {
            XCTAssertTrue(rollout.endedWithEOS)
            XCTAssertFalse(rollout.response.dropLast().contains(endOfTurn), "sampling went on past the end-of-turn token")
            XCTAssertEqual(rollout.rewards.last!, rollout.coherent.sum, accuracy: 1e-9)
        }
        // The same prompts and seeds with EOS alone: those responses run past the token.
        let eosOnly = try trainer(pt: pt, sft: sft, config: c, sampler: KVCacheSampler(maxBatch: 8))
        _ = try eosOnly.trainStep()
        XCTAssertTrue(eosOnly.lastRollouts.contains { $0.response.dropLast().contains(endOfTurn) })
    }

    /// PPO samples at temperature T and takes its ratios and KL in that distribution: the old
    /// log-probs are the sampler's own (softmax(logits / T)), not the raw model's.
    func testOldLogProbsAreThoseOfTheSamplingDistribution() throws {
        let (pt, sft) = Self.pair
        var c = Self.config(steps: 1)
        c.temperature = 0.7
        let recording = RecordingSampler(KVCacheSampler(maxBatch: 8))
        let ppo = try trainer(pt: pt, sft: sft, config: c, sampler: recording)
        _ = try ppo.trainStep()
        let sampled = recording.responses.flatMap(\.logProbs)
        let old = ppo.lastRollouts.flatMap(\.oldLogProbs)
        let raw = try sft.logProbs(ppo.lastRollouts.map { ScoringRequest(prompt: $0.prompt, response: $0.response) }).flatMap { $0 }
        XCTAssertEqual(old.count, sampled.count)
        XCTAssertLessThan(zip(old, sampled).map { abs($0 - $1) }.max()!, 1e-4)
        XCTAssertGreaterThan(zip(raw, sampled).map { abs($0 - $1) }.max()!, 0.1, "T = 0.7 should change the log-probs")
    }

    /// Top-p leaves tokens out of the sampling distribution, which PPO's ratios cannot account for.
    func testTopPIsRefused() throws {
        var c = Self.config(steps: 1)
        c.topP = 0.9
        XCTAssertThrowsError(try trainer(pt: Self.pair.pt, sft: Self.pair.sft, config: c)) {
            XCTAssertTrue("\($0)".contains("top-p 0.9: PPO cannot account for nucleus truncation"), "\($0)")
        }
    }

    /// A sampler that calls a response ending in PAD (or any non-EOS token) ended is refused before
    /// any reward is placed.
    func testASamplerThatMistakesPADForEOSIsRefused() throws {
        var config = Self.pair.sft.config
        config.padTokenId = 0
        let sft = LlamaModel(config: config)
        sft.weights.update(from: Self.pair.sft.weights, count: sft.layout.parameterCount)
        var c = Self.config(steps: 1)
        c.promptsPerStep = 2
        c.samplesPerPrompt = 1
        let bad = FixedSampler(responses: [SampledResponse(tokens: [5, 2], endedWithEOS: true), SampledResponse(tokens: [5, 0], endedWithEOS: true)])
        let ppo = try trainer(pt: Self.pair.pt, sft: sft, config: c, sampler: bad)
        XCTAssertThrowsError(try ppo.trainStep()) { XCTAssertTrue("\($0)".contains("response 1 as ended, but its last token is 0"), "\($0)") }
    }

    /// With identical PT and SFT (two copies of the same weights) every coherent reward is exactly 0.
    func testIdenticalPTAndSFTGiveExactlyZeroReward() throws {
        let sft = Self.pair.sft
        let pt = LlamaModel(config: sft.config)
        pt.weights.update(from: sft.weights, count: sft.layout.parameterCount)
        var c = Self.config(steps: 2)
        c.reward.truncation = .score
        let ppo = try trainer(pt: pt, sft: sft, config: c)
        for _ in 0..<2 {
            let metrics = try ppo.trainStep()
            XCTAssertEqual(metrics.reward, 0)
            for rollout in ppo.lastRollouts {
                XCTAssertEqual(rollout.coherent.sum, 0)
                XCTAssertEqual(rollout.coherent.perToken, [Double](repeating: 0, count: rollout.response.count))
            }
        }
    }

    // MARK: The optimum and a learnable task

    /// KL reference PT with β = 1 makes the objective E[log p_SFT − log π] = −KL(π‖SFT), whose
    /// optimum is SFT itself: PPO started at SFT does not improve the objective and stays close to SFT.
    /// (The same learning rate with the SFT reference moves the policy: see the next test.)
    func testWithPTReferenceAndBetaOnePPOStaysAtSFT() throws {
        let (pt, sft) = Self.pair
        var c = Self.config(steps: 25)
        c.actorLearningRate = 3e-4
        c.klReference = .pt
        c.klCoefficient = 1
        c.reward.truncation = .score
        let ppo = try trainer(pt: pt, sft: sft, config: c)
        var objective: [Double] = [], klSFT: [Double] = []
        for _ in 0..<c.steps {
            let m = try ppo.trainStep()
            objective.append(m.score)
            klSFT.append(m.klSFT)
            if objective.count == 1 {
                // At SFT every response's total reward is Σ log p_SFT − log π = 0 (to rounding).
                for r in ppo.lastRollouts { XCTAssertEqual(r.rewards.reduce(0, +), 0, accuracy: 1e-4) }
            }
        }
        print("beta=1, PT reference: objective", objective.map { String(format: "%.3f", $0) }, "kl_sft", klSFT.map { String(format: "%.3f", $0) })
        XCTAssertLessThanOrEqual(objective.max()!, 0.05, "the objective improved past its optimum")
        XCTAssertLessThanOrEqual(Self.mean(Array(objective.suffix(10))), 0.01)
        XCTAssertLessThan(Self.mean(klSFT), 0.3, "the policy left SFT")
        XCTAssertLessThan(klSFT.max()!, 0.5, "the policy left SFT")
    }

    /// On the reversal task (PT random, SFT partly trained) the coherent reward rises clearly over
    /// training while the KL to SFT stays bounded by the penalty (β = 1, reference SFT: it levels off
    /// around 1–1.5 nats per response instead of growing with the reward).
    func testCoherentRewardRisesAndKLStaysBounded() throws {
        let (pt, sft) = Self.pair
        var c = Self.config(steps: 60)
        c.klReference = .sft
        c.klCoefficient = 1
        let ppo = try trainer(pt: pt, sft: sft, config: c)
        var reward: [Double] = [], klSFT: [Double] = []
        for _ in 0..<c.steps {
            let m = try ppo.trainStep()
            reward.append(m.reward)
            klSFT.append(m.klSFT)
        }
        print("reward", reward.map { String(format: "%.2f", $0) }, "kl_sft", klSFT.map { String(format: "%.2f", $0) })
        let first = Self.mean(Array(reward.prefix(5))), last = Self.mean(Array(reward.suffix(10)))
        XCTAssertGreaterThan(last, first + 1.5, "reward \(first) → \(last)")
        XCTAssertLessThan(klSFT.max()!, 2.5, "KL to SFT unbounded")
        XCTAssertLessThan(Self.mean(Array(klSFT.suffix(20))), 2, "KL to SFT unbounded")
    }
}


extension PPOTests {
    /// Metrics without the wall-clock ones.
    static func deterministic(_ m: [String: Any]) -> [String: Double] {
        var out: [String: Double] = [:]
        for (k, v) in m where !k.hasPrefix("seconds_") && !k.hasSuffix("tokens_per_second") {
            if let d = v as? Double { out[k] = d } else if let i = v as? Int { out[k] = Double(i) } else if let b = v as? Bool { out[k] = b ? 1 : 0 }
        }
        return out
    }

    func checkResume(lora: LoRAConfig?) throws {
        let (pt, sft) = Self.pair
        var c = Self.config(steps: 4)
        c.promptsPerStep = 4
        c.checkpointEvery = 2
        c.actorLoRA = lora
        c.criticLoRA = lora
        let straight = try trainer(pt: pt, sft: sft, config: c)
        try straight.run()
        let expected = straight.run.readMetrics().map(Self.deterministic)
        XCTAssertEqual(expected.count, 4)

        let path = directory + "/resumed"
        let first = try PPOTrainer(sft: sft, prompts: Self.prompts(32), scorer: EmbeddedScorer(pt: pt, sft: sft),
                                   sampler: KVCacheSampler(maxBatch: 8), config: c, run: RunFolder(path: path))
        try first.run(maxSteps: 3)  // checkpoint at step 2; step 3 is lost with the process
        let second = try PPOTrainer(sft: sft, prompts: Self.prompts(32), scorer: EmbeddedScorer(pt: pt, sft: sft),
                                    sampler: KVCacheSampler(maxBatch: 8), config: c, run: RunFolder(path: path))
        XCTAssertEqual(try second.resume(), 2)
        try second.run()
        let logged = try RunFolder(path: path).readMetrics().map(Self.deterministic)
        XCTAssertEqual(logged.count, 4)
        XCTAssertEqual(logged, expected, "the resumed run differs from the straight one")

        // Another SFT behind the scorer: refused.
        let other = LlamaModel(config: sft.config)
        other.weights.update(from: sft.weights, count: sft.layout.parameterCount)
        other.weights[0] += 1
        let third = try PPOTrainer(sft: sft, prompts: Self.prompts(32), scorer: EmbeddedScorer(pt: pt, sft: other),
                                   sampler: KVCacheSampler(maxBatch: 8), config: c, run: RunFolder(path: path))
        XCTAssertThrowsError(try third.resume()) { XCTAssertTrue("\($0)".contains("trained against"), "\($0)") }
    }

    /// Resuming from a checkpoint continues exactly as if uninterrupted (actor, critic, value head,
    /// optimizers, KL controller, RNG, data cursor), and a different frozen model is refused.
    func testResumeContinuesExactlyFullFineTuning() throws { try checkResume(lora: nil) }

    func testResumeContinuesExactlyWithLoRA() throws { try checkResume(lora: LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .up])) }
}

/// Returns the same responses whatever the prompts.
struct FixedSampler: ResponseSampler {
    let responses: [SampledResponse]

    func sample(_ model: LlamaModel, prompts: [[Int32]], seeds: [UInt64], maxNewTokens: Int, temperature: Double,
                endTokens: Set<Int32>) throws -> [SampledResponse] {
        precondition(prompts.count == responses.count)
        return responses
    }
}

/// Passes sampling on and keeps what was sampled.
final class RecordingSampler: ResponseSampler {
    let inner: ResponseSampler
    var responses: [SampledResponse] = []

    init(_ inner: ResponseSampler) { self.inner = inner }

    func sample(_ model: LlamaModel, prompts: [[Int32]], seeds: [UInt64], maxNewTokens: Int, temperature: Double,
                endTokens: Set<Int32>) throws -> [SampledResponse] {
        let sampled = try inner.sample(model, prompts: prompts, seeds: seeds, maxNewTokens: maxNewTokens, temperature: temperature,
                                       endTokens: endTokens)
        responses += sampled
        return sampled
    }
}

/// Passes requests on and keeps them.
final class RecordingScorer: RewardScorer {
    let inner: RewardScorer
    var requests: [TokenPair] = []

    init(_ inner: RewardScorer) { self.inner = inner }

    var models: FrozenModels { inner.models }

    func score(_ requests: [TokenPair]) throws -> [RewardScores] {
        self.requests += requests
        return try inner.score(requests)
    }
}

extension PPOTests {
    /// The first minibatch's values come from its critic update's own training forward. Forwards
    /// run per sequence, so that forward and a plain one give the same bits, and the run is bit for
    /// bit the one with separate forwards: one minibatch in one epoch, and two minibatches in two.
    func testTheFirstMinibatchsCriticForwardIsReusedAndChangesNothing() throws {
        let (pt, sft) = Self.pair
        for (epochs, miniBatches) in [(1, 1), (2, 2)] {
            var c = Self.config(steps: 3)
            c.epochs = epochs
            c.miniBatchSize = c.responsesPerStep / miniBatches
            let separate = try trainer(pt: pt, sft: sft, config: c)
            separate.reusesUpdateForwards = false
            try separate.run()
            let reused = try trainer(pt: pt, sft: sft, config: c)
            try reused.run()
            let expected = separate.run.readMetrics().map(Self.deterministic)
            XCTAssertEqual(expected.count, 3)
            XCTAssertEqual(reused.run.readMetrics().map(Self.deterministic), expected, "\(epochs) epochs, \(miniBatches) minibatches")
            XCTAssertEqual(reused.lastRollouts.map(\.values), separate.lastRollouts.map(\.values))
        }
    }
}

extension PPOTests {
    /// Recomputing activations in the backward (`recompute`) reruns each layer on its kept input:
    /// the same activations, so the same run bit for bit, LoRA and full fine-tuning alike.
    func testRecomputedActivationsTrainExactlyAsKeptOnes() throws {
        let (pt, sft) = Self.pair
        for lora in [nil, LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .up])] {
            var c = Self.config(steps: 2)
            c.actorLoRA = lora
            c.criticLoRA = lora
            let kept = try trainer(pt: pt, sft: sft, config: c)
            try kept.run()
            c.recompute = true
            let recomputed = try trainer(pt: pt, sft: sft, config: c)
            try recomputed.run()
            let expected = kept.run.readMetrics().map(Self.deterministic)
            XCTAssertEqual(expected.count, 2)
            XCTAssertEqual(recomputed.run.readMetrics().map(Self.deterministic), expected, "LoRA: \(lora != nil)")
        }
    }
}
