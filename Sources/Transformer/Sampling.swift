import CKernels
import Foundation
import Compute

/// How the next token is chosen from the model's logits.
///
/// The sampling distribution is built in this order (as Hugging Face's generate does): divide the
/// logits by `temperature`; keep the `topK` most probable tokens; of those, keep the smallest set of
/// most probable tokens whose renormalized probability reaches `topP`; drop tokens less probable than
/// `minP` × the most probable one; renormalize. Ties in probability order (equal scaled logits, in
/// float) go to the lower token id.
/// Temperature 0 is greedy decoding (the most probable token, the lowest id among equals).
public struct SamplingParameters: Codable, Equatable, Sendable {
    public var temperature: Double
    /// 0: no top-k truncation.
    public var topK: Int
    /// 1: no nucleus truncation.
    public var topP: Double
    /// 0: no min-p truncation.
    public var minP: Double

    public init(temperature: Double = 1, topK: Int = 0, topP: Double = 1, minP: Double = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
    }

    public static let greedy = SamplingParameters(temperature: 0)

    public var isGreedy: Bool { temperature == 0 }

    /// Whether any token of the softmax is left out.
    var truncates: Bool { topK > 0 || topP < 1 || minP > 0 }

    /// Smallest positive temperature: below it the scaled logits could overflow.
    public static let minimumTemperature = 1e-6

    public func validate() throws {
        func fail(_ name: String, _ problem: String) -> GenerationError { .badSampling(parameter: name, problem: problem) }
        guard temperature.isFinite, temperature == 0 || temperature >= Self.minimumTemperature else {
            throw fail("temperature", "must be 0 (greedy) or at least \(Self.minimumTemperature), got \(temperature)")
        }
        guard topK >= 0 else { throw fail("top_k", "must be 0 (off) or positive, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw fail("top_p", "must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP <= 1 else { throw fail("min_p", "must be in [0, 1], got \(minP)") }
    }
}

/// One chosen token with its log-probability under the sampling distribution (0 for greedy: it is
/// certain) and under the raw model (softmax of the logits at temperature 1, nothing left out).
public struct SampledToken: Equatable, Sendable {
    public var token: Int32
    public var logProb: Float
    public var rawLogProb: Float
}

/// Draws tokens from rows of logits. Holds vocabulary-sized scratch: one per worker thread.
///
/// A draw takes one uniform number from the sequence's own generator (none for greedy), so a
/// sequence's tokens depend only on its logits and its seed.
public final class TokenSampler {
    public let vocabSize: Int
    private let scaled: AlignedBuffer<Float>
    private let probabilities: AlignedBuffer<Float>
    private let ids: AlignedBuffer<Int32>

    public init(vocabSize: Int) {
        self.vocabSize = vocabSize
        scaled = AlignedBuffer(count: vocabSize)
        probabilities = AlignedBuffer(count: vocabSize)
        ids = AlignedBuffer(count: vocabSize)
    }

    /// Chooses the next token from `logits` [V].
    public func sample(_ logits: UnsafePointer<Float>, parameters: SamplingParameters,
                       using rng: inout SeededGenerator) -> SampledToken {
        let V = Int32(vocabSize)
        func rawLogSumExp() -> Float {
            var value: Float = 0
            srppo_logsumexp_rows(&value, logits, 1, V, V)
            return value
        }
        if parameters.isGreedy {
            let token = srppo_argmax(logits, V)
            return SampledToken(token: token, logProb: 0, rawLogProb: logits[Int(token)] - rawLogSumExp())
        }
        let z = scaled.pointer
        let logSumExp = srppo_scale_logsumexp(z, logits, V, Float(1 / parameters.temperature))
        let raw = parameters.temperature == 1 ? logSumExp : rawLogSumExp()
        func chosen(_ token: Int32, logProb: Float) -> SampledToken {
            SampledToken(token: token, logProb: logProb, rawLogProb: logits[Int(token)] - raw)
        }
        let u = Double(rng.next() >> 11) * 0x1p-53
        guard parameters.truncates else {
            let token = srppo_sample_softmax(z, V, logSumExp, u, probabilities.pointer)
            return chosen(token, logProb: z[Int(token)] - logSumExp)
        }
        let support = truncatedSupport(z, logSumExp: logSumExp, parameters: parameters)
        let target = u * support.mass
        var cumulative = 0.0
        var pick = support.tokens.count - 1
        for (i, p) in support.probabilities.enumerated() {
            cumulative += p
            if cumulative > target { pick = i; break }
        }
        let logProb = Foundation.log(support.probabilities[pick]) - Foundation.log(support.mass)
        return chosen(support.tokens[pick], logProb: Float(logProb))
    }

    /// The sampling distribution of `logits` [V]: the tokens it keeps, most probable first (ties by
    /// lower id), with their probabilities renormalized over the kept set. Greedy keeps one token.
    public func distribution(_ logits: UnsafePointer<Float>, parameters: SamplingParameters) -> [(token: Int32, probability: Double)] {
        let V = Int32(vocabSize)
        if parameters.isGreedy { return [(srppo_argmax(logits, V), 1)] }
        let z = scaled.pointer
        let logSumExp = srppo_scale_logsumexp(z, logits, V, Float(1 / parameters.temperature))
        let support: Support
        if parameters.truncates {
            support = truncatedSupport(z, logSumExp: logSumExp, parameters: parameters)
        } else {
            support = Support(tokens: Array(0..<Int32(vocabSize)), z: z, logSumExp: logSumExp).sortedByProbability()
        }
        return zip(support.tokens, support.probabilities).map { ($0, $1 / support.mass) }
    }

    /// Kept tokens with their scaled logits z and probabilities p = exp(z − logSumExp) before
    /// renormalization (in double, so distinct z never round to equal p).
    struct Support {
        var tokens: [Int32]
        var logits: [Float]
        var probabilities: [Double]
        var mass: Double { probabilities.reduce(0, +) }

        init(tokens: [Int32], z: UnsafePointer<Float>, logSumExp: Float) {
            self.tokens = tokens
            logits = tokens.map { z[Int($0)] }
            probabilities = logits.map { Foundation.exp(Double($0) - Double(logSumExp)) }
        }

        private init(tokens: [Int32], logits: [Float], probabilities: [Double]) {
            self.tokens = tokens
            self.logits = logits
            self.probabilities = probabilities
        }

        /// Most probable first; equal scaled logits by lower token id.
        func sortedByProbability() -> Support {
            let order = tokens.indices.sorted { a, b in logits[a] != logits[b] ? logits[a] > logits[b] : tokens[a] < tokens[b] }
            return Support(tokens: order.map { tokens[$0] }, logits: order.map { logits[$0] }, probabilities: order.map { probabilities[$0] })
        }

        func prefix(_ count: Int) -> Support {
            Support(tokens: Array(tokens.prefix(count)), logits: Array(logits.prefix(count)), probabilities: Array(probabilities.prefix(count)))
        }
    }

    /// Applies top-k, top-p and min-p to the scaled logits `z`.
    ///
    /// Sorting the whole vocabulary for every token would cost more than the rest of sampling, so
    /// only the candidates with z ≥ τ are sorted, for a falling ladder of τ, stopping at the first τ
    /// whose candidates provably contain the whole kept set (every token below τ is less probable
    /// than every candidate, so the most probable tokens are always a prefix of the candidates).
    func truncatedSupport(_ z: UnsafePointer<Float>, logSumExp: Float, parameters q: SamplingParameters) -> Support {
        let V = Int32(vocabSize)
        let zMax = z[Int(srppo_argmax(z, V))]
        let minPThreshold = q.minP > 0 ? zMax + Float(Foundation.log(q.minP)) : -Float.infinity
        var candidates = Support(tokens: [], z: z, logSumExp: logSumExp)
        for epsilon in [1e-4, 1e-8, 1e-12, 0] {
            let tau = epsilon > 0 ? logSumExp + Float(Foundation.log(epsilon)) : -Float.infinity
            let count = Int(srppo_indices_at_least(ids.pointer, z, V, tau))
            candidates = Support(tokens: Array(UnsafeBufferPointer(start: ids.pointer, count: count)), z: z, logSumExp: logSumExp)
            let minPCovered = q.minP > 0 && tau <= minPThreshold
            let sufficient = q.topK > 0
                ? count >= q.topK || (q.topP >= 1 && minPCovered)
                : (q.topP < 1 && candidates.mass >= q.topP) || minPCovered
            if epsilon == 0 || sufficient { break }
        }
        var kept = candidates.sortedByProbability()
        if q.topK > 0 { kept = kept.prefix(q.topK) }
        if q.topP < 1 {
            // Renormalized over the top-k set when there is one; the softmax sums to 1 otherwise.
            let target = q.topP * (q.topK > 0 ? kept.mass : 1)
            var cumulative = 0.0
            var count = kept.tokens.count
            for (i, p) in kept.probabilities.enumerated() {
                cumulative += p
                if cumulative >= target { count = i + 1; break }
            }
            kept = kept.prefix(count)
        }
        if q.minP > 0 {
            let count = kept.logits.prefix { $0 >= minPThreshold }.count
            kept = kept.prefix(count)
        }
        return kept
    }
}
