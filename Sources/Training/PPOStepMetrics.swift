/// One PPO step as metrics.jsonl records it (the keys below), as `srppo bench ppo` and the progress
/// line read it. Means are over the step's responses (rewards, KL, lengths) or over the tokens of its
/// updates (losses, clip fractions, entropy).
public struct PPOStepMetrics: Codable, Equatable, Sendable {
    public var step: Int
    /// Raw coherent reward Σ log p_SFT − log p_PT per response, and per response token.
    public var reward: Double
    public var rewardPerToken: Double
    /// The PPO return: the coherent reward (by placement) minus the KL penalty.
    public var score: Double
    public var klSFT: Double
    public var klPT: Double
    public var klCoefficient: Double
    public var approxKL: Double
    public var policyLoss: Double
    public var clipFraction: Double
    public var entropy: Double
    public var valueLoss: Double
    public var valueClipFraction: Double
    public var explainedVariance: Double
    public var returnMean: Double
    public var returnStd: Double
    public var valueMean: Double
    /// Mean advantage of the first and of the last response token, before whitening.
    public var advantageFirstToken: Double
    public var advantageLastToken: Double
    public var responseLength: Double
    public var eosRate: Double
    public var truncationRate: Double
    /// Responses whose sequence reward the opt-in clip changed.
    public var rewardClipped: Int
    public var generatedTokensPerSecond: Double
    public var tokensPerSecond: Double
    public var secondsStep: Double
    public var secondsGenerate: Double
    public var secondsScore: Double
    public var secondsPrepare: Double
    public var secondsTrain: Double
    /// False during the critic's warm-up steps.
    public var actorTrained: Bool

    enum CodingKeys: String, CodingKey {
        case step, reward, rewardPerToken = "reward_per_token", score, klSFT = "kl_sft", klPT = "kl_pt",
             klCoefficient = "kl_coefficient", approxKL = "approx_kl", policyLoss = "policy_loss", clipFraction = "clip_fraction",
             entropy, valueLoss = "value_loss", valueClipFraction = "value_clip_fraction", explainedVariance = "explained_variance",
             returnMean = "return_mean", returnStd = "return_std", valueMean = "value_mean",
             advantageFirstToken = "advantage_first_token", advantageLastToken = "advantage_last_token",
             responseLength = "response_length", eosRate = "eos_rate", truncationRate = "truncation_rate",
             rewardClipped = "reward_clipped", generatedTokensPerSecond = "generated_tokens_per_second",
             tokensPerSecond = "tokens_per_second", secondsStep = "seconds_step", secondsGenerate = "seconds_generate",
             secondsScore = "seconds_score", secondsPrepare = "seconds_prepare", secondsTrain = "seconds_train",
             actorTrained = "actor_trained"
    }
}
