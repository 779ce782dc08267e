import Foundation
import ModelFiles
import Compute
import Transformer

/// Settings of an SFT run; saved in the run folder, all overridable from the command line.
public struct SFTConfig: Codable, Equatable, Sendable {
    public var epochs = 2
    /// Demonstrations per optimizer step.
    public var batchSize = 8
    /// Demonstrations per forward/backward pass (gradient accumulation when smaller than batchSize).
    public var microBatchSize = 8
    public var learningRate = 5e-5
    public var warmupRatio = 0.1
    public var decay = LearningRateSchedule.Decay.cosine
    public var minimumLearningRateRatio = 0.1
    public var optimizer = AdamWConfig()
    public var maxGradientNorm = 1.0
    /// Share of the demonstrations held out for evaluation loss (at least one when there are 2+).
    public var evalFraction = 0.1
    public var evalEvery = 25
    public var checkpointEvery = 50
    public var keepCheckpoints = 2
    public var seed: UInt64 = 0
    /// Train LoRA adapters instead of every weight; merged into the saved checkpoints.
    public var lora: LoRAConfig?
    /// Recompute each layer's activations in the backward instead of keeping them.
    public var recompute = false

    public init() {}
}

/// Where the run is, saved with each checkpoint; with the weights, the optimizer moments and this,
/// a resumed run continues exactly as if it had not stopped.
struct SFTState: Codable {
    var step: Int
    var epoch: Int
    /// Position in this epoch's order of the training examples.
    var cursor: Int
    var rng: SeededGenerator
    var order: [Int]
}

/// Supervised fine-tuning: next-token cross-entropy on the response tokens only (including the
/// final end-of-turn token), averaged over the response tokens of each optimizer step.
public final class SFTTrainer {
    public let model: LlamaModel
    public let config: SFTConfig
    public let train: [TokenizedExample]
    public let heldOut: [TokenizedExample]
    public let run: RunFolder
    /// Writes tokenizer files (and anything else a checkpoint needs besides weights) into a folder.
    public var writeExtraFiles: (String) throws -> Void = { _ in }
    public var progress = ProgressLine()
    /// The ranks of a data-parallel run (`mpirun -np N`): each backpropagates its share of every
    /// optimizer step's demonstrations and the gradients are summed, so every rank takes the same
    /// steps. Rank 0 writes the run folder.
    public var collective: Collective = SingleProcess()

    let parameters: TrainableParameters
    let optimizer: AdamW
    let schedule: LearningRateSchedule
    var state: SFTState

    public var totalSteps: Int { schedule.totalSteps }
    public var step: Int { state.step }

    public init(model: LlamaModel, examples: [TokenizedExample], config: SFTConfig, run: RunFolder) throws {
        guard examples.count >= 1 else { throw TrainingError.badRun(path: run.path, problem: "no demonstrations to train on") }
        self.model = model
        self.config = config
        self.run = run
        // Hold out a deterministic share (chosen by the seed, independent of file order).
        var rng = SeededGenerator(seed: config.seed)
        var indices = Array(examples.indices)
        indices.shuffle(using: &rng)
        let heldOutCount = examples.count >= 2 ? max(1, Int((Double(examples.count) * config.evalFraction).rounded())) : 0
        heldOut = indices.prefix(heldOutCount).sorted().map { examples[$0] }
        train = indices.dropFirst(heldOutCount).sorted().map { examples[$0] }

        if let lora = config.lora {
            model.adapters = LoRAAdapters(config: lora, model: model.config, seed: config.seed &+ 1)
            parameters = .adapters(model.adapters!)
        } else {
            parameters = .fullModel(model)
        }
        optimizer = AdamW(config: config.optimizer, parameterCount: parameters.count)
        let stepsPerEpoch = (train.count + config.batchSize - 1) / config.batchSize
        let total = stepsPerEpoch * config.epochs
        schedule = LearningRateSchedule(peak: config.learningRate, warmupSteps: Int((Double(total) * config.warmupRatio).rounded()),
                                        totalSteps: total, decay: config.decay, minimumRatio: config.minimumLearningRateRatio)
        var order = Array(train.indices)
        order.shuffle(using: &rng)
        state = SFTState(step: 0, epoch: 0, cursor: 0, rng: rng, order: order)
    }

    // MARK: Training loop

    /// Trains to the end (or `maxSteps` more steps), logging metrics and checkpointing.
    public func run(maxSteps: Int? = nil) throws {
        let stopAt = min(totalSteps, maxSteps.map { state.step + $0 } ?? totalSteps)
        let started = Date()
        let startStep = state.step
        if state.step == 0 {
            let loss = try evaluate()
            if collective.isLeader { try run.log(["step": 0, "eval_loss": loss]) }
        }
        while state.step < stopAt {
            let record = try trainStep()
            var line = "sft step \(state.step)/\(totalSteps) epoch \(record.epoch + 1) loss \(String(format: "%.4f", record.loss))"
            var metrics: [String: Any] = ["step": state.step, "epoch": record.epoch, "loss": record.loss, "lr": record.learningRate,
                                          "grad_norm": record.gradientNorm, "tokens": record.tokens,
                                          "tokens_per_second": record.tokensPerSecond, "seconds": record.seconds]
            if state.step % config.evalEvery == 0 || state.step == totalSteps {
                let loss = try evaluate()
                metrics["eval_loss"] = loss
                line += String(format: " eval %.4f", loss)
            }
            guard collective.isLeader else { continue }
            try run.log(metrics)
            let elapsed = Date().timeIntervalSince(started)
            let eta = elapsed / Double(state.step - startStep) * Double(stopAt - state.step)
            line += String(format: " lr %.2e |g| %.2f %.0f tok/s ETA %@", record.learningRate, record.gradientNorm,
                           record.tokensPerSecond, ProgressLine.duration(eta))
            progress.show(line)
            if state.step % config.checkpointEvery == 0 || state.step == totalSteps {
                try saveCheckpoint()
            }
        }
        if collective.isLeader { progress.finish() }
    }

    struct StepRecord {
        var epoch: Int
        var loss: Double
        var learningRate: Double
        var gradientNorm: Double
        var tokens: Int
        var tokensPerSecond: Double
        var seconds: Double
    }

    /// One optimizer step over the next `batchSize` demonstrations.
    func trainStep() throws -> StepRecord {
        let started = Date()
        let epoch = state.epoch
        var batch: [TokenizedExample] = []
        while batch.count < config.batchSize && state.epoch == epoch {
            batch.append(train[state.order[state.cursor]])
            state.cursor += 1
            if state.cursor == state.order.count {
                state.epoch += 1
                state.cursor = 0
                var rng = state.rng
                state.order.shuffle(using: &rng)
                state.rng = rng
            }
        }
        let responseTokens = batch.reduce(0) { $0 + $1.tokens.response.count }
        let weight = 1 / Float(responseTokens)
        parameters.zeroGradients()
        var lossSum = 0.0
        // This rank's share of the step (all of it in a single process), in micro-batches.
        let share = collective.share(of: batch.count)
        var start = share.lowerBound
        while start < share.upperBound {
            let micro = batch[start..<min(start + config.microBatchSize, share.upperBound)]
            let requests = micro.map { ScoringRequest(prompt: $0.tokens.prompt, response: $0.tokens.response) }
            let tape = try model.trainingForward(requests, recompute: config.recompute)
            let full = config.lora == nil
            let head = model.lmHeadForwardBackward(tape, computeEntropy: false, gradients: full ? parameters.gradients : nil) { _, _, _ in
                (-weight, 0)
            }
            lossSum -= head.logProbs.reduce(0.0) { $0 + Double($1) }
            model.backward(tape, headInputGradient: head.headInputGradient, into: full ? parameters.gradients : nil,
                           adapterGradients: full ? nil : parameters.gradients)
            start += micro.count
        }
        try collective.sum(parameters.gradients)
        lossSum = try collective.sum([lossSum])[0]
        let norm = parameters.clipGradients(maxNorm: config.maxGradientNorm)
        let lr = schedule.rate(at: state.step)
        optimizer.update(parameters, learningRate: lr)
        state.step += 1
        let seconds = Date().timeIntervalSince(started)
        let tokens = batch.reduce(0) { $0 + $1.tokens.tokenCount }
        return StepRecord(epoch: epoch, loss: lossSum / Double(responseTokens), learningRate: lr, gradientNorm: norm,
                          tokens: tokens, tokensPerSecond: Double(tokens) / seconds, seconds: seconds)
    }

    /// Mean negative log-likelihood per response token of the held-out demonstrations (of the
    /// training ones when nothing is held out).
    /// With several ranks, each scores its share and the sums are added.
    public func evaluate() throws -> Double {
        let examples = heldOut.isEmpty ? train : heldOut
        let (total, count) = try Self.negativeLogLikelihood(model, Array(examples[collective.share(of: examples.count)]),
                                                            batchSize: config.microBatchSize)
        let sums = try collective.sum([total, Double(count)])
        return sums[0] / max(sums[1], 1)
    }

    public static func meanNegativeLogLikelihood(_ model: LlamaModel, _ examples: [TokenizedExample], batchSize: Int) throws -> Double {
        let (total, count) = try negativeLogLikelihood(model, examples, batchSize: batchSize)
        return total / Double(max(count, 1))
    }

    /// Σ −log p over the response tokens of `examples`, and how many there are.
    static func negativeLogLikelihood(_ model: LlamaModel, _ examples: [TokenizedExample], batchSize: Int) throws -> (Double, Int) {
        var total = 0.0, count = 0
        var start = 0
        while start < examples.count {
            let chunk = examples[start..<min(start + batchSize, examples.count)]
            for values in try model.logProbs(chunk.map { ScoringRequest(prompt: $0.tokens.prompt, response: $0.tokens.response) }) {
                total -= values.reduce(0.0) { $0 + Double($1) }
                count += values.count
            }
            start += chunk.count
        }
        return (total, count)
    }

    // MARK: Checkpoints

    /// A checkpoint folder: the model in Hugging Face layout (adapters merged) plus tokenizer files,
    /// and under training-state/ what resuming needs (optimizer moments, adapters, trainer state).
    public func saveCheckpoint() throws {
        try run.writeTrainingCheckpoint(step: state.step, keep: config.keepCheckpoints, policy: model.mergingAdapters(),
                                        extraFiles: writeExtraFiles, state: state) { stateFolder in
            try trained.save(stateFolder: stateFolder)
        }
    }

    /// Restores the newest checkpoint of the run: weights, adapters, optimizer and trainer state.
    /// Returns the step resumed at (0 when the run has no checkpoint yet).
    @discardableResult
    public func resume() throws -> Int {
        guard let (latest, stateFolder, saved) = try run.newestTrainingState(SFTState.self) else { return 0 }
        try trained.restore(stateFolder: stateFolder, weightsFolder: latest)
        state = saved
        guard state.order.count == train.count else {
            throw TrainingError.resumeMismatch("the checkpoint was trained on \(state.order.count) demonstrations, the data now has \(train.count)")
        }
        if collective.isLeader { try run.truncateMetrics(after: state.step) }
        return state.step
    }

    private var trained: TrainedModel { TrainedModel(model: model, optimizer: optimizer, prefix: "") }
}
