import Foundation
import ModelFiles
import Reward
import Compute
import Transformer

/// A sampled response: its tokens (ending with an end token when it ended), how it stopped, and
/// each token's log-probability under the distribution it was drawn from.
public struct SampledResponse: Equatable, Sendable {
    public var tokens: [Int32]
    public var endedWithEOS: Bool
    /// Empty when the sampler does not report them.
    public var logProbs: [Float]

    public init(tokens: [Int32], endedWithEOS: Bool, logProbs: [Float] = []) {
        self.tokens = tokens
        self.endedWithEOS = endedWithEOS
        self.logProbs = logProbs
    }
}

/// Draws responses from the current policy at `temperature` (softmax(logits / T), nothing truncated:
/// the distribution PPO's ratios are taken in). A response ends at one of `endTokens` (kept as its
/// last token) or after `maxNewTokens`. One seed per response makes rollouts reproducible whatever
/// the batch composition.
public protocol ResponseSampler {
    func sample(_ model: LlamaModel, prompts: [[Int32]], seeds: [UInt64], maxNewTokens: Int,
                temperature: Double, endTokens: Set<Int32>) throws -> [SampledResponse]
}

/// One response of a step with everything PPO computes for it, per response token (kept for
/// inspection: `PPOTrainer.lastRollouts`).
public struct Rollout {
    public internal(set) var prompt: [Int32]
    public internal(set) var response: [Int32]
    public internal(set) var endedWithEOS: Bool
    /// log π_old of each response token (the actor before this step's updates).
    public internal(set) var oldLogProbs: [Float]
    public internal(set) var scores: RewardScores
    public internal(set) var coherent: CoherentReward.Result
    public internal(set) var values: [Double]
    /// The PPO reward per token: coherent reward (by placement) minus the KL penalty.
    public internal(set) var rewards: [Double]
    public internal(set) var advantages: [Double] = []
    public internal(set) var returns: [Double] = []

    var request: ScoringRequest { ScoringRequest(prompt: prompt, response: response) }
}

/// Where a PPO run is; saved with each checkpoint.
struct PPOState: Codable {
    var step: Int
    var cursor: Int
    var order: [Int]
    var rng: SeededGenerator
    var kl: KLController
    /// nil when the critic learns raw returns.
    var valueNormalizer: ValueNormalizer?
    var frozen: FrozenModels
}

/// PPO with the coherent reward (SRPPO stage 2). The actor samples, the frozen models score through
/// the `RewardScorer` seam, and actor and critic (SFT trunk + value head) learn from clipped losses.
public final class PPOTrainer {
    public let config: PPOConfig
    public let actor: LlamaModel
    public let critic: LlamaModel
    public let valueHead: ValueHead
    public let prompts: [TokenizedExample]
    public let run: RunFolder
    let scorer: RewardScorer
    let sampler: ResponseSampler
    /// The tokens that end a response (EOS and the chat template's end-of-turn): the coherent reward
    /// sits on one of them, and a response without one was cut off.
    public let endTokens: Set<Int32>
    /// Writes tokenizer files into saved models.
    public var writeExtraFiles: (String) throws -> Void = { _ in }
    public var progress = ProgressLine()
    /// The ranks of a data-parallel run (`mpirun -np N`): each samples, scores and backpropagates its
    /// share of a step; the rollouts are gathered so that every rank computes the same advantages,
    /// and the gradients summed so that every rank takes the same optimizer steps. Rank 0 writes the
    /// run folder.
    public var collective: Collective = SingleProcess()

    let actorParameters: TrainableParameters
    let criticParameters: TrainableParameters
    let headParameters: TrainableParameters
    let actorOptimizer: AdamW
    let criticOptimizer: AdamW
    let headOptimizer: AdamW
    var state: PPOState
    /// The rollouts of the latest step (before its updates), for tests and diagnostics.
    public private(set) var lastRollouts: [Rollout] = []
    /// Whether the first minibatch's values come from its critic update's own training forward (one
    /// critic forward less per step). Off only to measure or test the difference.
    public var reusesUpdateForwards = true

    public var step: Int { state.step }
    public var klCoefficient: Double { state.kl.beta }

    /// Actor and critic start from `sft`: heap copies, or with LoRA adapters on its parameters.
    public convenience init(sft: LlamaModel, prompts: [TokenizedExample], scorer: RewardScorer, sampler: ResponseSampler,
                            endTokens: Set<Int32>? = nil, config: PPOConfig, run: RunFolder) throws {
        try self.init(start: .copies(of: sft), prompts: prompts, scorer: scorer, sampler: sampler, endTokens: endTokens,
                      config: config, run: run)
    }

    /// Actor and critic start from `start` (a fully trained network gets private weights; a LoRA
    /// network adapters on the shared base). `endTokens` (`PromptResponseEncoder.endTokens`; nil: the
    /// SFT model's EOS ids) end every response.
    public init(start: PolicyStart, prompts: [TokenizedExample], scorer: RewardScorer, sampler: ResponseSampler,
                endTokens: Set<Int32>? = nil, config: PPOConfig, run: RunFolder) throws {
        guard !prompts.isEmpty else { throw TrainingError.badRun(path: run.path, problem: "no prompts for PPO") }
        let endTokens = endTokens ?? Set(start.config.eosTokenIds.map(Int32.init))
        guard !endTokens.isEmpty else {
            throw TrainingError.badRun(path: run.path, problem: "the SFT model names no EOS token: the coherent reward sits on EOS")
        }
        try config.validate()
        self.config = config
        self.prompts = prompts
        self.run = run
        self.scorer = scorer
        self.sampler = sampler
        self.endTokens = endTokens
        actor = try start.network(lora: config.actorLoRA, seed: config.seed &+ 11)
        critic = try start.network(lora: config.criticLoRA, seed: config.seed &+ 12)
        valueHead = ValueHead(width: start.config.hiddenSize)
        actorParameters = actor.adapters.map(TrainableParameters.adapters) ?? .fullModel(actor)
        criticParameters = critic.adapters.map(TrainableParameters.adapters) ?? .fullModel(critic)
        headParameters = valueHead.trainable
        actorOptimizer = AdamW(config: config.optimizer, parameterCount: actorParameters.count)
        criticOptimizer = AdamW(config: config.optimizer, parameterCount: criticParameters.count)
        headOptimizer = AdamW(config: config.optimizer, parameterCount: headParameters.count)
        var rng = SeededGenerator(seed: config.seed)
        var order = Array(prompts.indices)
        order.shuffle(using: &rng)
        state = PPOState(step: 0, cursor: 0, order: order, rng: rng,
                         kl: KLController(beta: config.klCoefficient, target: config.klTarget, horizon: config.klHorizon),
                         valueNormalizer: config.valueNormalizationDecay.map(ValueNormalizer.init), frozen: scorer.models)
    }

    // MARK: Loop

    public func run(maxSteps: Int? = nil) throws {
        let stopAt = min(config.steps, maxSteps.map { state.step + $0 } ?? config.steps)
        let started = Date(), startStep = state.step
        while state.step < stopAt {
            let m = try trainStep()
            guard collective.isLeader else { continue }
            try run.log(m)
            let elapsed = Date().timeIntervalSince(started)
            let eta = elapsed / Double(state.step - startStep) * Double(stopAt - state.step)
            progress.show(String(format: "ppo step %d/%d reward %.3f kl_sft %.3f len %.1f eos %.0f%% vloss %.3f %.1f tok/s ETA %@",
                                 state.step, config.steps, m.reward, m.klSFT, m.responseLength, 100 * m.eosRate, m.valueLoss,
                                 m.tokensPerSecond, ProgressLine.duration(eta)))
            if state.step % config.checkpointEvery == 0 || state.step == config.steps { try saveCheckpoint() }
            if config.savePolicyAt.contains(state.step) { try savePolicy() }
        }
        if collective.isLeader { progress.finish() }
    }

    /// One PPO step: rollouts, scoring, advantages, then `epochs` passes of minibatch updates.
    /// Returns the step's metrics.
    public func trainStep() throws -> PPOStepMetrics {
        var clock = Date()
        func lap() -> Double { let now = Date(); defer { clock = now }; return now.timeIntervalSince(clock) }

        // 1. This rank's share of the step's responses (all of them in a single process).
        let (prompts, seeds) = nextPrompts()
        let mine = collective.share(of: prompts.count)
        let sampled = try sample(Array(prompts[mine]), seeds: Array(seeds[mine]), first: mine.lowerBound)
        let generateSeconds = lap()

        // 2. Frozen models' log-probs (reward and KL references) from one scoring call.
        let requests = zip(prompts[mine], sampled).map { TokenPair(prompt: $0, response: $1.tokens) }
        let scores = try scorer.score(requests)
        let scoreSeconds = lap()

        // 3. The actor's log-probs and the critic's values before any update, then over the whole
        // step: rewards, advantages and returns.
        let (share, reused) = try evaluateBeforeUpdates(requests, sampled: sampled, scores: scores)
        let (rollouts, firstAdvantage, lastAdvantage) = advantages(try share.gathered(over: collective))
        lastRollouts = rollouts
        let prepareSeconds = lap()

        // 4. Updates.
        let trainActor = state.step >= config.criticWarmupSteps
        let totals = try update(rollouts, trainActor: trainActor, reusing: reused)
        let trainSeconds = lap()
        state.step += 1

        // 5. Metrics and the KL controller.
        let tokens = rollouts.reduce(0) { $0 + $1.response.count }
        let klSFT = rollouts.map { r in zip(r.oldLogProbs, r.scores.sft).reduce(0.0) { $0 + Double($1.0) - Double($1.1) } }
        let klPT = rollouts.map { r in zip(r.oldLogProbs, r.scores.pt).reduce(0.0) { $0 + Double($1.0) - Double($1.1) } }
        let mean = { (x: [Double]) in x.reduce(0, +) / Double(x.count) }
        state.kl.update(observedKL: config.klReference == .pt ? mean(klPT) : mean(klSFT), responses: rollouts.count)
        let values = rollouts.flatMap(\.values), returns = rollouts.flatMap(\.returns)
        let returnMean = mean(returns)
        let stepSeconds = generateSeconds + scoreSeconds + prepareSeconds + trainSeconds
        return PPOStepMetrics(
            step: state.step,
            reward: mean(rollouts.map(\.coherent.sum)),
            rewardPerToken: mean(rollouts.map { $0.coherent.sum / Double(max($0.response.count, 1)) }),
            score: mean(rollouts.map { $0.rewards.reduce(0, +) }),
            klSFT: mean(klSFT), klPT: mean(klPT), klCoefficient: state.kl.beta,
            approxKL: totals.mean(totals.approxKL, totals.policyTokens),
            policyLoss: totals.mean(totals.policyLoss, totals.policyTokens),
            clipFraction: totals.mean(totals.policyClipped, totals.policyTokens),
            entropy: totals.mean(totals.entropy, totals.policyTokens),
            valueLoss: totals.mean(totals.valueLoss, totals.valueTokens),
            valueClipFraction: totals.mean(totals.valueClipped, totals.valueTokens),
            explainedVariance: PPOMath.explainedVariance(predictions: values, targets: returns),
            returnMean: returnMean,
            returnStd: (returns.reduce(0) { $0 + ($1 - returnMean) * ($1 - returnMean) } / Double(max(returns.count, 1))).squareRoot(),
            valueMean: mean(values),
            advantageFirstToken: mean(firstAdvantage), advantageLastToken: mean(lastAdvantage),
            responseLength: Double(tokens) / Double(rollouts.count),
            eosRate: Double(rollouts.filter(\.endedWithEOS).count) / Double(rollouts.count),
            truncationRate: Double(rollouts.filter { !$0.endedWithEOS }.count) / Double(rollouts.count),
            rewardClipped: rollouts.filter(\.coherent.clipped).count,
            generatedTokensPerSecond: Double(tokens) / max(generateSeconds, 1e-9),
            tokensPerSecond: Double(tokens) / max(stepSeconds, 1e-9),
            secondsStep: stepSeconds, secondsGenerate: generateSeconds, secondsScore: scoreSeconds,
            secondsPrepare: prepareSeconds, secondsTrain: trainSeconds, actorTrained: trainActor)
    }

    /// The step's prompts, `samplesPerPrompt` times each, and one seed per sample (the same on every rank).
    private func nextPrompts() -> (prompts: [[Int32]], seeds: [UInt64]) {
        var stepPrompts: [[Int32]] = []
        var seeds: [UInt64] = []
        var rng = state.rng
        for _ in 0..<config.promptsPerStep {
            let prompt = prompts[state.order[state.cursor]].tokens.prompt
            state.cursor += 1
            if state.cursor == state.order.count {
                state.cursor = 0
                state.order.shuffle(using: &rng)
            }
            for _ in 0..<config.samplesPerPrompt {
                stepPrompts.append(prompt)
                seeds.append(rng.next())
            }
        }
        state.rng = rng
        return (stepPrompts, seeds)
    }

    /// Responses from the current actor. Each sample has its own seed, so its tokens do not depend on
    /// which rank draws it or what else is in its batch. `first`: the step's index of the first one.
    private func sample(_ prompts: [[Int32]], seeds: [UInt64], first: Int) throws -> [SampledResponse] {
        let sampled = try sampler.sample(actor, prompts: prompts, seeds: seeds, maxNewTokens: config.maxNewTokens,
                                         temperature: config.temperature, endTokens: endTokens)
        // The coherent reward goes on the end token: a response has ended exactly when its last token
        // is one of the end tokens (a PAD or any other token there means it was cut off).
        for (i, s) in sampled.enumerated() where s.endedWithEOS != (s.tokens.last.map(endTokens.contains) ?? false) {
            throw TrainingError.badRun(path: run.path, problem: "the sampler reports response \(first + i) as \(s.endedWithEOS ? "ended" : "cut off"), but its last token is \(s.tokens.last.map(String.init) ?? "none") and the end tokens are \(endTokens.sorted())")
        }
        return sampled
    }

    /// The actor's own log-probs (of the distribution it sampled from) and the critic's values of this
    /// rank's responses before any update. The first minibatch of the first epoch trains on exactly
    /// these weights, so the critic's training forward of it runs now, gives its values and is
    /// returned, with the responses it covers, for its update to reuse: one critic forward less per step. (The actor's is not: holding
    /// its tape too would double the activation memory.) The critic updates before the actor, so one tape at a time is
    /// alive. Only a single process reuses it: with several ranks a minibatch is split between them.
    private func evaluateBeforeUpdates(_ requests: [TokenPair], sampled: [SampledResponse], scores: [RewardScores]) throws
        -> (StepShare, reused: (tape: TrainingTape, batch: [Int])?) {
        let scoring = requests.map { ScoringRequest(prompt: $0.prompt, response: $0.response) }
        let reuses = reusesUpdateForwards && collective.size == 1
        let firstBatch = reuses ? Array(Self.shuffled(scoring.indices, rng: state.rng).order.prefix(config.miniBatchSize)) : []
        let others = scoring.indices.filter { !firstBatch.contains($0) }
        let oldLogProbs = try actor.logProbs(scoring, sharePrefixes: config.sharePrefixes, temperature: config.temperature)
        let criticTape = firstBatch.isEmpty ? nil : try critic.trainingForward(firstBatch.map { scoring[$0] }, recompute: config.recompute,
                                                                                     sharePrefixes: config.sharePrefixes)
        let otherHeadInputs = others.isEmpty ? nil : try critic.headInputs(others.map { scoring[$0] }, sharePrefixes: config.sharePrefixes)
        // The value head's outputs (normalized units), from its inputs' rows: the responses of `order` one after another.
        var headValues = [[Double]](repeating: [], count: scoring.count)
        func readValues(_ headInputs: UnsafePointer<Float>, _ order: [Int]) {
            var row = 0
            for i in order {
                let n = requests[i].response.count
                headValues[i] = valueHead.values(headInputs + row * valueHead.width, rows: n)
                row += n
            }
        }
        if let criticTape { readValues(criticTape.headInput.pointer, firstBatch) }
        if let otherHeadInputs { readValues(otherHeadInputs.pointer, others) }
        let share = StepShare(requests: requests, sampled: sampled, oldLogProbs: oldLogProbs, scores: scores, values: headValues)
        return (share, criticTape.map { ($0, firstBatch) })
    }

    /// The whole step's rollouts with rewards (coherent, minus the KL penalty), values, advantages and
    /// returns, and the mean advantage of each response's first and last token before whitening
    /// (does the final token carry the reward alone, as with a critic that has not learned?).
    private func advantages(_ step: StepShare) -> (rollouts: [Rollout], first: [Double], last: [Double]) {
        var rollouts: [Rollout] = []
        for i in step.requests.indices {
            let (request, score) = (step.requests[i], step.scores[i])
            let coherent = config.reward.compute(sft: score.sft, pt: score.pt, endedWithEOS: step.endedWithEOS[i])
            var rewards = coherent.perToken
            if let reference = referenceLogProbs(score) {
                for t in rewards.indices { rewards[t] -= state.kl.beta * (Double(step.oldLogProbs[i][t]) - Double(reference[t])) }
            }
            rollouts.append(Rollout(prompt: request.prompt, response: request.response, endedWithEOS: step.endedWithEOS[i],
                                    oldLogProbs: step.oldLogProbs[i], scores: score, coherent: coherent, values: [], rewards: rewards))
        }
        // A fresh normalizer starts from this step's rewards-to-go, so the very first values are the
        // mean return rather than 0.
        if state.valueNormalizer?.isEmpty == true {
            state.valueNormalizer?.update(rollouts.flatMap { PPOMath.rewardsToGo($0.rewards, gamma: config.gamma) })
        }
        for i in rollouts.indices {
            rollouts[i].values = step.values[i].map(denormalized)
            (rollouts[i].advantages, rollouts[i].returns) = PPOMath.gae(rewards: rollouts[i].rewards, values: rollouts[i].values,
                                                                        gamma: config.gamma, lambda: config.lambda)
        }
        let first = rollouts.map { $0.advantages.first ?? 0 }, last = rollouts.map { $0.advantages.last ?? 0 }
        // The critic's targets this step are normalized with statistics that include them.
        state.valueNormalizer?.update(rollouts.flatMap(\.returns))
        if config.whitenAdvantages {
            let whitened = PPOMath.whiten(rollouts.map(\.advantages))
            for i in rollouts.indices { rollouts[i].advantages = whitened[i] }
        }
        return (rollouts, first, last)
    }

    /// `epochs` passes of minibatch updates, critic then actor (the actor not while the critic warms
    /// up); `reusing` is the first minibatch's critic forward and the responses it covers, used once.
    /// Each rank backpropagates its share of every minibatch. Returns the loss totals of all ranks.
    private func update(_ rollouts: [Rollout], trainActor: Bool, reusing reused: (tape: TrainingTape, batch: [Int])?) throws -> UpdateTotals {
        var totals = UpdateTotals()
        var criticTape = reused?.tape
        for epoch in 0..<config.epochs {
            let (order, next) = Self.shuffled(rollouts.indices, rng: state.rng)
            state.rng = next
            precondition(epoch > 0 || reused.map { Array(order.prefix(config.miniBatchSize)) == $0.batch } ?? true,
                         "the first minibatch changed after its forwards ran")
            var start = 0
            while start < order.count {
                let batch = order[start..<min(start + config.miniBatchSize, order.count)].map { rollouts[$0] }
                // This rank's share of the minibatch; the losses are means over the whole minibatch's tokens.
                let share = Array(batch[collective.share(of: batch.count)])
                let tokens = batch.reduce(0) { $0 + $1.response.count }
                try updateCritic(share, tokens: tokens, tape: criticTape, totals: &totals)
                criticTape = nil
                if trainActor { try updateActor(share, tokens: tokens, totals: &totals) }
                start += batch.count
            }
        }
        return try totals.summed(over: collective)
    }

    /// `indices` shuffled by a copy of `rng`, and that copy after the shuffle (an epoch's minibatch order).
    static func shuffled(_ indices: Range<Int>, rng: SeededGenerator) -> (order: [Int], rng: SeededGenerator) {
        var order = Array(indices)
        var generator = rng
        order.shuffle(using: &generator)
        return (order, generator)
    }

    private func referenceLogProbs(_ scores: RewardScores) -> [Float]? {
        switch config.klReference {
        case .sft: return scores.sft
        case .pt: return scores.pt
        case .none: return nil
        }
    }

    struct UpdateTotals {
        var policyTokens = 0, valueTokens = 0
        var policyLoss = 0.0, approxKL = 0.0, policyClipped = 0.0, entropy = 0.0
        var valueLoss = 0.0, valueClipped = 0.0

        func mean(_ sum: Double, _ count: Int) -> Double { count == 0 ? 0 : sum / Double(count) }

        /// The totals of all ranks (exact: token counts are far below 2⁵³).
        func summed(over collective: Collective) throws -> UpdateTotals {
            if collective.size == 1 { return self }
            let s = try collective.sum([Double(policyTokens), Double(valueTokens), policyLoss, approxKL, policyClipped, entropy,
                                        valueLoss, valueClipped])
            return UpdateTotals(policyTokens: Int(s[0]), valueTokens: Int(s[1]), policyLoss: s[2], approxKL: s[3], policyClipped: s[4],
                                entropy: s[5], valueLoss: s[6], valueClipped: s[7])
        }
    }

    /// Clipped policy loss (+ entropy bonus), averaged over the minibatch's `tokens` response tokens,
    /// of which `batch` is this rank's share (possibly none); the ranks' gradients are summed.
    private func updateActor(_ batch: [Rollout], tokens: Int, totals: inout UpdateTotals) throws {
        actorParameters.zeroGradients()
        if !batch.isEmpty { try actorGradients(batch, weight: 1 / Double(tokens), totals: &totals) }
        try collective.sum(actorParameters.gradients)
        actorParameters.clipGradients(maxNorm: config.maxGradientNorm)
        actorOptimizer.update(actorParameters, learningRate: config.actorLearningRate)
    }

    private func actorGradients(_ batch: [Rollout], weight: Double, totals: inout UpdateTotals) throws {
        let tape = try actor.trainingForward(batch.map(\.request), recompute: config.recompute, sharePrefixes: config.sharePrefixes)
        let flatOld = batch.flatMap(\.oldLogProbs), flatAdvantages = batch.flatMap(\.advantages)
        let full = actor.adapters == nil
        var local = totals
        let head = actor.lmHeadForwardBackward(tape, computeEntropy: true, temperature: config.temperature,
                                               gradients: full ? actorParameters.gradients : nil) { row, logProb, entropy in
            let p = PPOMath.policyLoss(logProb: Double(logProb), oldLogProb: Double(flatOld[row]), advantage: flatAdvantages[row],
                                       clip: config.policyClip)
            let delta = Double(logProb) - Double(flatOld[row])
            local.policyLoss += p.loss
            local.approxKL += 0.5 * delta * delta
            local.policyClipped += p.clipped ? 1 : 0
            local.entropy += Double(entropy)
            return (Float(p.gradient * weight), Float(-config.entropyCoefficient * weight))
        }
        local.policyTokens += head.logProbs.count
        totals = local
        actor.backward(tape, headInputGradient: head.headInputGradient, into: full ? actorParameters.gradients : nil,
                       adapterGradients: full ? nil : actorParameters.gradients)
    }

    /// The value of a value-head output: itself, or denormalized by the running return statistics.
    private func denormalized(_ head: Double) -> Double { state.valueNormalizer?.denormalize(head) ?? head }

    private func normalized(_ value: Double) -> Double { state.valueNormalizer?.normalize(value) ?? value }

    /// Clipped value loss, averaged over the minibatch's `tokens` response tokens, of which `batch` is
    /// this rank's share; trains trunk and head together. With value normalization the loss, and the
    /// clip range, are in units of the returns' deviation.
    private func updateCritic(_ batch: [Rollout], tokens: Int, tape: TrainingTape?, totals: inout UpdateTotals) throws {
        criticParameters.zeroGradients()
        headParameters.zeroGradients()
        if !batch.isEmpty { try criticGradients(batch, tokens: tokens, tape: tape, totals: &totals) }
        try collective.sum(criticParameters.gradients)
        try collective.sum(headParameters.gradients)
        criticParameters.clipGradients(maxNorm: config.maxGradientNorm)
        headParameters.clipGradients(maxNorm: config.maxGradientNorm)
        criticOptimizer.update(criticParameters, learningRate: config.criticLearningRate)
        headOptimizer.update(headParameters, learningRate: config.valueHeadLearningRate)
    }

    private func criticGradients(_ batch: [Rollout], tokens: Int, tape: TrainingTape?, totals: inout UpdateTotals) throws {
        let tape = try tape ?? critic.trainingForward(batch.map(\.request), recompute: config.recompute,
                                                       sharePrefixes: config.sharePrefixes)
        let rows = tape.scoredCount
        let values = valueHead.values(tape.headInput.pointer, rows: rows)
        let oldValues = batch.flatMap(\.values).map(normalized), targets = batch.flatMap(\.returns).map(normalized)
        var gradients = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            let v = PPOMath.valueLoss(value: values[r], oldValue: oldValues[r], target: targets[r], clip: config.valueClip)
            totals.valueLoss += v.loss
            totals.valueClipped += v.clipped ? 1 : 0
            gradients[r] = v.gradient / Double(tokens)
        }
        totals.valueTokens += rows
        let dInputs = valueHead.backward(tape.headInput.pointer, rows: rows, valueGradients: gradients, into: headParameters.gradients)
        let full = critic.adapters == nil
        critic.backward(tape, headInputGradient: dInputs, into: full ? criticParameters.gradients : nil,
                        adapterGradients: full ? nil : criticParameters.gradients)
    }
}
