import ArgumentParser
import Reward
import Training

/// The settings of a PPO run, as flags: each overrides the same field of `PPOConfig` (defaults, or
/// the `--config` file), and all of them are saved in the run's run-config.json.
struct PPOOptions: ParsableArguments {
    @Option(help: "PPO steps.") var steps: Int?
    @Option(help: "Prompts per step.") var promptsPerStep: Int?
    @Option(help: "Responses sampled per prompt.") var samplesPerPrompt: Int?
    @Option(help: "Longest response in tokens; longer ones are truncated.") var maxNewTokens: Int?
    @Option(help: "Sampling temperature.") var temperature: Double?
    @Option(help: "Nucleus sampling threshold.") var topP: Double?
    @Option(help: "Reward placement (default: eos).") var rewardPlacement: CoherentReward.Placement?
    @Option(help: "Penalty for a response cut off before EOS (it gets no coherent reward).") var truncationPenalty: Double?
    @Flag(help: "Give truncated responses their coherent reward instead of the penalty.") var scoreTruncated = false
    @Option(help: "Opt-in symmetric clip of the sequence reward (logged).") var rewardClip: Double?
    @Option(help: "KL reference (default: sft).") var klReference: KLReference?
    @Option(help: "KL coefficient β.") var klCoefficient: Double?
    @Option(help: "Adapt β toward this KL per response.") var klTarget: Double?
    @Option(help: "Discount γ.") var gamma: Double?
    @Option(help: "GAE λ.") var lambda: Double?
    @Option(help: "Policy ratio clip ε.") var policyClip: Double?
    @Option(help: "Value clip (0: off).") var valueClip: Double?
    @Option(help: "Entropy bonus coefficient.") var entropyCoefficient: Double?
    @Option(help: "Passes over each step's rollouts.") var epochs: Int?
    @Option(help: "Responses per optimizer step.") var miniBatchSize: Int?
    @Option(help: "Actor learning rate.") var actorLr: Double?
    @Option(help: "Critic learning rate.") var criticLr: Double?
    @Option(help: "Value head learning rate (default 1e-3: the head starts from zero).") var valueHeadLr: Double?
    @Option(help: "Decay per step of the running return statistics the critic's targets are normalized by (0: off).")
    var valueNormalizationDecay: Double?
    @Option(help: "Steps in which only the critic learns.") var criticWarmupSteps: Int?
    @Option(help: "Train the actor as LoRA adapters of this rank.") var actorLoraRank: Int?
    @Option(help: "Train the critic trunk as LoRA adapters of this rank.") var criticLoraRank: Int?
    @Option(help: "LoRA target projections for both, comma-separated from q,k,v,o,gate,up,down.") var loraTargets: String?
    @Option(help: "Checkpoint every N steps.") var checkpointEvery: Int?
    @Option(help: "Checkpoints to keep.") var keep: Int?
    @Option(help: "Also write the policy after step N to policy-step-N/ (repeatable).") var savePolicyAt: [Int] = []
    @Option(help: "Seed for prompt order and sampling.") var seed: UInt64?
    @Flag(help: "Forward the prompt its samples share once (scoring, old log-probs, values and the updates' forwards and backwards): equal up to ~1e-5, faster.")
    var sharePrefixes = false
    @Flag(help: "Recompute activations in the backward: a third more update compute, a fraction of the activation memory (most of a LoRA trainer's own).")
    var recompute = false

    /// Writes every given setting into `c` and checks the counts.
    func apply(to c: inout PPOConfig) throws {
        if let steps { c.steps = steps }
        if let promptsPerStep { c.promptsPerStep = promptsPerStep }
        if let samplesPerPrompt { c.samplesPerPrompt = samplesPerPrompt }
        if let maxNewTokens { c.maxNewTokens = maxNewTokens }
        if let temperature { c.temperature = temperature }
        if let topP { c.topP = topP }
        if let rewardPlacement { c.reward.placement = rewardPlacement }
        if let truncationPenalty { c.reward.truncation = .penalty(truncationPenalty) }
        if scoreTruncated { c.reward.truncation = .score }
        if let rewardClip { c.reward.clip = rewardClip }
        if let klReference { c.klReference = klReference }
        if let klCoefficient { c.klCoefficient = klCoefficient }
        if let klTarget { c.klTarget = klTarget }
        if let gamma { c.gamma = gamma }
        if let lambda { c.lambda = lambda }
        if let policyClip { c.policyClip = policyClip }
        if let valueClip { c.valueClip = valueClip > 0 ? valueClip : nil }
        if let entropyCoefficient { c.entropyCoefficient = entropyCoefficient }
        if let epochs { c.epochs = epochs }
        if let miniBatchSize { c.miniBatchSize = miniBatchSize }
        if let actorLr { c.actorLearningRate = actorLr }
        if let criticLr { c.criticLearningRate = criticLr }
        if let valueHeadLr { c.valueHeadLearningRate = valueHeadLr }
        if let valueNormalizationDecay {
            guard valueNormalizationDecay >= 0, valueNormalizationDecay < 1 else {
                throw CLI.Failure(description: "--value-normalization-decay must be in [0, 1) (0 turns normalization off)")
            }
            c.valueNormalizationDecay = valueNormalizationDecay > 0 ? valueNormalizationDecay : nil
        }
        if let criticWarmupSteps { c.criticWarmupSteps = criticWarmupSteps }
        if let actorLoraRank { c.actorLoRA = try LoRAOptions.config(rank: actorLoraRank, alpha: nil, targets: loraTargets) }
        if let criticLoraRank { c.criticLoRA = try LoRAOptions.config(rank: criticLoraRank, alpha: nil, targets: loraTargets) }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let keep { c.keepCheckpoints = keep }
        if !savePolicyAt.isEmpty { c.savePolicyAt = savePolicyAt }
        if let seed { c.seed = seed }
        if sharePrefixes { c.sharePrefixes = true }
        if recompute { c.recompute = true }
        for (name, value) in [("--steps", c.steps), ("--prompts-per-step", c.promptsPerStep), ("--samples-per-prompt", c.samplesPerPrompt),
                              ("--max-new-tokens", c.maxNewTokens), ("--epochs", c.epochs), ("--mini-batch-size", c.miniBatchSize),
                              ("--checkpoint-every", c.checkpointEvery), ("--keep", c.keepCheckpoints)] where value < 1 {
            throw CLI.Failure(description: "\(name) must be at least 1")
        }
    }

    /// Whether any setting was given (a resumed run takes its saved ones).
    var given: Bool {
        [steps, promptsPerStep, samplesPerPrompt, maxNewTokens, epochs, miniBatchSize, criticWarmupSteps, actorLoraRank,
         criticLoraRank, checkpointEvery, keep].contains { $0 != nil }
            || [temperature, topP, truncationPenalty, rewardClip, klCoefficient, klTarget, gamma, lambda, policyClip, valueClip,
                entropyCoefficient, actorLr, criticLr, valueHeadLr, valueNormalizationDecay].contains { $0 != nil }
            || rewardPlacement != nil || klReference != nil || loraTargets != nil || seed != nil || scoreTruncated || sharePrefixes || recompute
            || !savePolicyAt.isEmpty
    }
}

extension CoherentReward.Placement: ExpressibleByArgument {}
extension KLReference: ExpressibleByArgument {}
