import ArgumentParser
import Training

/// The settings of an SFT run, as flags: each overrides the same field of `SFTConfig` (defaults, or
/// the `--config` file), and all of them are saved in the run's run-config.json.
struct SFTOptions: ParsableArguments {
    @Option(help: "Epochs over the training demonstrations.") var epochs: Int?
    @Option(help: "Demonstrations per optimizer step.") var batchSize: Int?
    @Option(help: "Demonstrations per forward/backward pass (gradient accumulation below batch size).") var microBatchSize: Int?
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate: Double?
    @Option(help: "Share of steps spent warming up.") var warmupRatio: Double?
    @Option(help: "Decay after warm-up (default: cosine).") var schedule: LearningRateSchedule.Decay?
    @Option(help: "AdamW decoupled weight decay (matrices only).") var weightDecay: Double?
    @Option(help: "Global gradient-norm clip (0: off).") var maxGradNorm: Double?
    @Option(help: "Share of demonstrations held out for eval loss.") var evalFraction: Double?
    @Option(help: "Evaluate every N steps.") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps.") var checkpointEvery: Int?
    @Option(help: "Checkpoints to keep.") var keep: Int?
    @Option(help: "Seed for the split, data order and LoRA init.") var seed: UInt64?
    @Option(help: "Train LoRA adapters of this rank instead of all weights.") var loraRank: Int?
    @Option(help: "LoRA alpha (default: 2 × rank).") var loraAlpha: Double?
    @Option(help: "LoRA target projections, comma-separated from q,k,v,o,gate,up,down.") var loraTargets: String?
    @Flag(help: "Recompute activations in the backward (less memory, ~1/3 more compute).") var recompute = false

    /// Writes every given setting into `c` and checks them.
    func apply(to c: inout SFTConfig) throws {
        if let epochs { c.epochs = epochs }
        if let batchSize { c.batchSize = batchSize }
        c.microBatchSize = microBatchSize ?? min(c.microBatchSize, c.batchSize)
        if let learningRate { c.learningRate = learningRate }
        if let warmupRatio { c.warmupRatio = warmupRatio }
        if let schedule { c.decay = schedule }
        if let weightDecay { c.optimizer.weightDecay = weightDecay }
        if let maxGradNorm { c.maxGradientNorm = maxGradNorm }
        if let evalFraction { c.evalFraction = evalFraction }
        if let evalEvery { c.evalEvery = evalEvery }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let keep { c.keepCheckpoints = keep }
        if let seed { c.seed = seed }
        if recompute { c.recompute = true }
        if let loraRank { c.lora = try LoRAOptions.config(rank: loraRank, alpha: loraAlpha, targets: loraTargets) }
        for (name, value) in [("--epochs", c.epochs), ("--batch-size", c.batchSize), ("--micro-batch-size", c.microBatchSize),
                              ("--eval-every", c.evalEvery), ("--checkpoint-every", c.checkpointEvery), ("--keep", c.keepCheckpoints)]
        where value < 1 {
            throw CLI.Failure(description: "\(name) must be at least 1")
        }
        guard c.learningRate > 0 else { throw CLI.Failure(description: "--lr must be positive") }
        guard (0..<1).contains(c.evalFraction) else { throw CLI.Failure(description: "--eval-fraction must be in [0, 1)") }
    }

    /// Whether any setting was given (a resumed run takes its saved ones).
    var given: Bool {
        [epochs, batchSize, microBatchSize, evalEvery, checkpointEvery, keep, loraRank].contains { $0 != nil }
            || [learningRate, warmupRatio, weightDecay, maxGradNorm, evalFraction, loraAlpha].contains { $0 != nil }
            || schedule != nil || seed != nil || loraTargets != nil || recompute
    }
}

extension LearningRateSchedule.Decay: ExpressibleByArgument {}
