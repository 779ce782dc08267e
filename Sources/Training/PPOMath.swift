import Foundation

/// The arithmetic of PPO for language models, per token, kept free of models so it can be tested
/// against hand-computed values.
public enum PPOMath {
    /// Generalized advantage estimation over one response (Schulman et al. 2016):
    /// δ_t = r_t + γ·V_{t+1} − V_t (V after the last token is 0), A_t = δ_t + γλ·A_{t+1};
    /// returns R_t = A_t + V_t are the critic's targets.
    public static func gae(rewards: [Double], values: [Double], gamma: Double, lambda: Double) -> (advantages: [Double], returns: [Double]) {
        precondition(rewards.count == values.count)
        let n = rewards.count
        var advantages = [Double](repeating: 0, count: n)
        var next = 0.0, nextValue = 0.0
        for t in stride(from: n - 1, through: 0, by: -1) {
            let delta = rewards[t] + gamma * nextValue - values[t]
            next = delta + gamma * lambda * next
            advantages[t] = next
            nextValue = values[t]
        }
        return (advantages, zip(advantages, values).map(+))
    }

    /// Σ_{k≥t} γ^(k−t)·r_k for each token t: the returns with no critic (GAE with V = 0, λ = 1).
    public static func rewardsToGo(_ rewards: [Double], gamma: Double) -> [Double] {
        gae(rewards: rewards, values: [Double](repeating: 0, count: rewards.count), gamma: gamma, lambda: 1).returns
    }

    /// Shifts and scales all tokens' advantages of a batch to mean 0 and standard deviation 1.
    public static func whiten(_ groups: [[Double]]) -> [[Double]] {
        let all = groups.flatMap { $0 }
        guard all.count > 1 else { return groups }
        let mean = all.reduce(0, +) / Double(all.count)
        let variance = all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(all.count - 1)
        let scale = 1 / (variance.squareRoot() + 1e-8)
        return groups.map { $0.map { ($0 - mean) * scale } }
    }

    /// Clipped surrogate policy loss of one token, −min(ρA, clip(ρ, 1−ε, 1+ε)A) with
    /// ρ = exp(logp − logp_old), and its derivative with respect to logp.
    public static func policyLoss(logProb: Double, oldLogProb: Double, advantage a: Double, clip epsilon: Double)
        -> (loss: Double, gradient: Double, clipped: Bool) {
        let ratio = Foundation.exp(logProb - oldLogProb)
        let unclipped = ratio * a
        let clippedRatio = min(max(ratio, 1 - epsilon), 1 + epsilon)
        let clippedValue = clippedRatio * a
        if clippedValue < unclipped {
            // The clipped term is the minimum: it does not depend on logp.
            return (-clippedValue, 0, true)
        }
        return (-unclipped, -unclipped, false)
    }

    /// Clipped value loss of one token, ½·max((V − R)², (V_clip − R)²) with
    /// V_clip = V_old + clip(V − V_old, −ε, ε), and its derivative with respect to V.
    public static func valueLoss(value v: Double, oldValue: Double, target r: Double, clip epsilon: Double?)
        -> (loss: Double, gradient: Double, clipped: Bool) {
        let plain = 0.5 * (v - r) * (v - r)
        // Inside the clip range V_clip is V itself. (Computed as V_old + (V − V_old) it would differ from
        // V in the last bit, and that rounding alone would count a token as clipped.)
        guard let epsilon, abs(v - oldValue) > epsilon else { return (plain, v - r, false) }
        let vClip = oldValue + (v > oldValue ? epsilon : -epsilon)
        let clipped = 0.5 * (vClip - r) * (vClip - r)
        // The clipped term is the maximum: it does not depend on V.
        return clipped > plain ? (clipped, 0, true) : (plain, v - r, false)
    }

    /// Fraction of the variance of `targets` that `predictions` explain (1 is perfect, ≤ 0 useless).
    public static func explainedVariance(predictions: [Double], targets: [Double]) -> Double {
        guard targets.count > 1 else { return 0 }
        func variance(_ x: [Double]) -> Double {
            let m = x.reduce(0, +) / Double(x.count)
            return x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count)
        }
        let v = variance(targets)
        return v == 0 ? 0 : 1 - variance(zip(targets, predictions).map { $0 - $1 }) / v
    }
}

/// Running statistics of the critic's targets (the returns), so the value head learns returns of any
/// scale as numbers of order 1: the head predicts v̂ and the value is V = mean + std·v̂ (value
/// normalization, as in PopArt without its output preservation, and MAPPO's ValueNorm).
///
/// Why: a coherent reward on EOS is a sum of log-ratios, ≈ 20 nats for SmolLM2. A fresh head
/// (V = 0) moved by AdamW at a critic learning rate of 2e-5 takes thousands of updates to reach that,
/// so for a whole run every EOS token carried the un-baselined reward as its advantage and PPO
/// mostly learned to stop early. With the statistics, V starts at the mean return.
///
/// The mean and mean square are exponential moving averages over steps (`decay` per step), divided
/// by the weight they have gathered so the first steps are not pulled toward 0.
public struct ValueNormalizer: Codable, Equatable, Sendable {
    public var decay: Double
    private var weightedMean = 0.0
    private var weightedSquare = 0.0
    private var weight = 0.0

    public init(decay: Double) {
        precondition(decay >= 0 && decay < 1, "decay must be in [0, 1)")
        self.decay = decay
    }

    public var mean: Double { weight > 0 ? weightedMean / weight : 0 }

    /// No returns seen yet (mean 0, deviation 1).
    public var isEmpty: Bool { weight == 0 }

    /// Never below `minimumStandardDeviation`, so identical returns do not divide by 0.
    public var standardDeviation: Double {
        guard weight > 0 else { return 1 }
        let variance = weightedSquare / weight - mean * mean
        return max(variance.squareRoot(), Self.minimumStandardDeviation)
    }

    static let minimumStandardDeviation = 1e-3

    /// Folds one step's returns (all tokens of all responses) into the statistics.
    public mutating func update(_ returns: [Double]) {
        guard !returns.isEmpty else { return }
        let n = Double(returns.count)
        let batchMean = returns.reduce(0, +) / n
        let batchSquare = returns.reduce(0) { $0 + $1 * $1 } / n
        weightedMean = decay * weightedMean + (1 - decay) * batchMean
        weightedSquare = decay * weightedSquare + (1 - decay) * batchSquare
        weight = decay * weight + (1 - decay)
    }

    public func normalize(_ value: Double) -> Double { (value - mean) / standardDeviation }

    public func denormalize(_ normalized: Double) -> Double { mean + standardDeviation * normalized }
}

/// The KL penalty coefficient β: fixed, or adapted toward a target KL per response (Ziegler et al.
/// 2019): β ← β·(1 + clip(KL/target − 1, −0.2, 0.2)·n/horizon) after each batch of n responses.
public struct KLController: Codable, Equatable, Sendable {
    public var beta: Double
    public var target: Double?
    public var horizon: Double

    public init(beta: Double, target: Double? = nil, horizon: Double = 10000) {
        self.beta = beta
        self.target = target
        self.horizon = horizon
    }

    public mutating func update(observedKL kl: Double, responses n: Int) {
        guard let target, target > 0 else { return }
        let error = min(max(kl / target - 1, -0.2), 0.2)
        beta *= 1 + error * Double(n) / horizon
    }
}
