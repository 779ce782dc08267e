/// The coherent reward of SRPPO and its ablations, computed from per-token log-probabilities of a
/// response under the frozen SFT and PT models:
///
///     r(x, y) = log p_SFT(y | x) − log p_PT(y | x) = Σ_t [log p_SFT(y_t | x, y_<t) − log p_PT(y_t | x, y_<t)]
///
/// summed over the response tokens including the final EOS.
public struct CoherentReward: Codable, Equatable, Sendable {
    /// Where the reward goes.
    public enum Placement: String, Codable, CaseIterable, Sendable {
        /// The whole sum on the EOS token (the method's default: sequence-level).
        case eos
        /// Each token gets its own log-ratio (ablation; invites length degeneration).
        case tokenwise
        /// The sum divided by the response length, on the EOS token (ablation).
        case lengthNormalized = "length-normalized"
    }

    /// What a response cut off before EOS (by the length limit) receives.
    public enum Truncation: Codable, Equatable, Sendable {
        /// `penalty` subtracted on the last token, and the coherent reward of the tokens it has: none
        /// for the placements on EOS (there is no EOS), each token's own log-ratio for token-wise
        /// (default). Both placements thus pay the same for being cut off.
        case penalty(Double)
        /// The coherent reward as if the response had ended.
        case score
    }

    public var placement: Placement
    public var truncation: Truncation
    /// Opt-in symmetric clipping of the sequence reward (logged when it changes a value).
    public var clip: Double?

    public init(placement: Placement = .eos, truncation: Truncation = .penalty(1.0), clip: Double? = nil) {
        self.placement = placement
        self.truncation = truncation
        self.clip = clip
    }

    public struct Result: Equatable, Sendable {
        /// Reward per response token (the PPO reward before the KL penalty).
        public var perToken: [Double]
        /// Σ_t (log p_SFT − log p_PT): the raw coherent reward, whatever the placement.
        public var sum: Double
        public var truncated: Bool
        /// Whether `clip` changed the value.
        public var clipped: Bool
    }

    /// Rewards for one response of `sft.count` tokens; `endedWithEOS` says whether its last token is
    /// an end-of-sequence token (otherwise it was truncated).
    public func compute(sft: [Float], pt: [Float], endedWithEOS: Bool) -> Result {
        precondition(sft.count == pt.count, "log-prob lists differ in length")
        let n = sft.count
        var ratios = [Double](repeating: 0, count: n)
        for t in 0..<n { ratios[t] = Double(sft[t]) - Double(pt[t]) }
        let sum = ratios.reduce(0, +)
        var perToken = [Double](repeating: 0, count: n)
        guard n > 0 else { return Result(perToken: [], sum: 0, truncated: !endedWithEOS, clipped: false) }
        var clipped = false
        func limit(_ v: Double) -> Double {
            guard let c = clip else { return v }
            let l = min(max(v, -c), c)
            if l != v { clipped = true }
            return l
        }
        if !endedWithEOS, case let .penalty(p) = truncation {
            if placement == .tokenwise { perToken = ratios.map(limit) }
            perToken[n - 1] -= p
            return Result(perToken: perToken, sum: sum, truncated: true, clipped: clipped)
        }
        switch placement {
        case .eos: perToken[n - 1] = limit(sum)
        case .lengthNormalized: perToken[n - 1] = limit(sum / Double(n))
        case .tokenwise: perToken = ratios.map(limit)
        }
        return Result(perToken: perToken, sum: sum, truncated: !endedWithEOS, clipped: clipped)
    }
}

/// Per-token log-probs of a response under both frozen models.
public struct RewardScores: Codable, Equatable, Sendable {
    public var pt: [Float]
    public var sft: [Float]

    public init(pt: [Float], sft: [Float]) {
        self.pt = pt
        self.sft = sft
    }
}

/// Which frozen models a scorer serves (content hashes), so a run can refuse to resume against
/// different ones.
public struct FrozenModels: Codable, Equatable, Sendable {
    public var pt: String
    public var sft: String

    public init(pt: String, sft: String) {
        self.pt = pt
        self.sft = sft
    }
}

/// The seam between PPO and whoever holds the frozen PT and SFT models: the daemon over its socket,
/// or an in-process engine. PPO sees only this.
public protocol RewardScorer: AnyObject {
    var models: FrozenModels { get }
    /// Log-probs of each response under PT and SFT, in request order.
    func score(_ requests: [TokenPair]) throws -> [RewardScores]
}
