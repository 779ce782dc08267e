import Reward
import Transformer

/// Which frozen model the per-token KL penalty −β·(log π − log π_ref) measures against.
public enum KLReference: String, Codable, CaseIterable, Sendable {
    case sft, pt, none
}

/// Settings of a PPO run with the coherent reward. Defaults follow published PPO-for-LM practice
/// (InstructGPT, Ziegler et al. 2019, OpenRLHF/TRL defaults) scaled to a small model on a CPU:
/// γ = 1, λ = 0.95, ε = 0.2 for both the policy and the value clip, whitened advantages, AdamW
/// with gradient clipping at 1, a fixed β = 0.05 (adaptive with a target when `klTarget` is set),
/// critic learning rate above the actor's.
public struct PPOConfig: Codable, Equatable, Sendable {
    // Rollouts
    public var steps = 30
    public var promptsPerStep = 4
    public var samplesPerPrompt = 4
    public var maxNewTokens = 64
    public var temperature = 1.0
    public var topP = 1.0
    /// Forward the prompt its samples share once, in every forward of a step (in-process scoring, the
    /// actor's old log-probs, the critic's values, and the training forwards and backwards of each
    /// minibatch): equal to one forward per response up to float rounding (~1e-5), and faster.
    public var sharePrefixes = false
    /// Training forwards keep only each layer's input and the backward recomputes the rest: about a
    /// third more compute in the update for a fraction of the activation memory, which is most of a
    /// LoRA trainer's own memory (BENCHMARKS.md, "Many trainers on one host").
    public var recompute = false

    // Reward
    public var reward = CoherentReward()
    public var klReference = KLReference.sft
    public var klCoefficient = 0.05
    /// Adaptive β: the KL per response to aim for (nil: fixed β).
    public var klTarget: Double?
    public var klHorizon = 10000.0

    // PPO
    public var gamma = 1.0
    public var lambda = 0.95
    public var policyClip = 0.2
    public var valueClip: Double? = 0.2
    public var entropyCoefficient = 0.0
    /// Passes over each step's rollouts.
    public var epochs = 2
    /// Responses per optimizer step within a pass.
    public var miniBatchSize = 8
    public var whitenAdvantages = true
    /// The critic learns returns normalized by their running mean and standard deviation
    /// (`ValueNormalizer`, this decay per step); nil: raw returns.
    public var valueNormalizationDecay: Double? = 0.9

    // Optimization
    public var actorLearningRate = 2e-6
    public var criticLearningRate = 2e-5
    /// The value head's own learning rate. The head starts from zero while the trunk starts trained:
    /// at the critic's 2e-5 it did not learn within 10 steps (explained variance ≤ 0.01), at 1e-3 it
    /// reached 0.38 by step 9 (README, "The EOS-placed reward and its critic").
    public var valueHeadLearningRate = 1e-3
    public var optimizer = AdamWConfig()
    public var maxGradientNorm = 1.0
    public var actorLoRA: LoRAConfig?
    public var criticLoRA: LoRAConfig?
    /// Steps at the start in which only the critic learns (the actor waits for useful values).
    public var criticWarmupSteps = 0

    // Bookkeeping
    public var checkpointEvery = 10
    public var keepCheckpoints = 2
    /// Steps after which the policy is also written to `policy-step-N/` (an intermediate policy to
    /// evaluate; `model/` holds the final one).
    public var savePolicyAt: [Int] = []
    public var seed: UInt64 = 0

    public init() {}

    public var responsesPerStep: Int { promptsPerStep * samplesPerPrompt }

    /// Refuses settings PPO cannot honour, in one line each.
    public func validate() throws {
        func fail(_ problem: String) -> TrainingError { .badConfig(problem) }
        guard temperature.isFinite, temperature >= SamplingParameters.minimumTemperature else {
            throw fail("temperature must be positive (PPO samples from softmax(logits / T)), got \(temperature)")
        }
        if let step = savePolicyAt.first(where: { $0 < 1 || $0 > steps }) {
            throw fail("save-policy-at \(step): the run has steps 1 to \(steps)")
        }
        // Ratios, the KL estimate and the old log-probs are taken in the sampling distribution;
        // top-p leaves tokens out of it, and nothing here accounts for that (nor does TRL or OpenRLHF).
        guard topP == 1 else {
            throw fail("top-p \(topP): PPO cannot account for nucleus truncation in its ratios and KL; sample with --temperature only (top-p 1)")
        }
    }
}
