import Foundation
import Compute
import Transformer
import XCTest

/// The sampler against a plain float64 implementation of the same definitions (full sort, no ladder).
final class SamplingTests: XCTestCase {
    /// Reference sampling distribution: tokens most probable first (ties: lower id) with their
    /// renormalized probabilities. `margin` is how far the decisive comparisons of top-p (relative to
    /// the target mass) and min-p (in logits) are from their thresholds, so a test can skip the cases
    /// that float rounding could flip.
    private func reference(_ logits: [Float], _ q: SamplingParameters) -> (tokens: [Int32], probabilities: [Double], margin: Double) {
        // The scaled logits as the engine forms them (a float product), so both order them alike.
        let z = logits.map { Double($0 * Float(1 / q.temperature)) }
        let m = z.max()!
        let logSumExp = m + log(z.reduce(0) { $0 + exp($1 - m) })
        var order = z.indices.sorted { z[$0] != z[$1] ? z[$0] > z[$1] : $0 < $1 }
        var p = order.map { exp(z[$0] - logSumExp) }
        var margin = Double.infinity
        if q.topK > 0 {
            order = Array(order.prefix(q.topK))
            p = Array(p.prefix(q.topK))
        }
        if q.topP < 1 {
            let target = q.topP * (q.topK > 0 ? p.reduce(0, +) : 1)
            var cumulative = 0.0, count = p.count
            for i in p.indices {
                let before = cumulative
                cumulative += p[i]
                if cumulative >= target {
                    count = i + 1
                    margin = min(margin, (cumulative - target) / target, (target - before) / target)
                    break
                }
            }
            order = Array(order.prefix(count))
            p = Array(p.prefix(count))
        }
        if q.minP > 0 {
            let threshold = log(q.minP) + (z[order[0]])
            let count = order.prefix { z[$0] >= threshold }.count
            for i in order.indices { margin = min(margin, abs(z[order[i]] - threshold)) }
            order = Array(order.prefix(count))
            p = Array(p.prefix(count))
        }
        let total = p.reduce(0, +)
        return (order.map { Int32($0) }, p.map { $0 / total }, margin)
    }

    private func randomLogits(_ count: Int, scale: Float, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in scale * rng.nextNormal() }
    }

    private let settings: [SamplingParameters] = [
        SamplingParameters(topK: 1), SamplingParameters(topK: 5), SamplingParameters(topK: 50),
        SamplingParameters(temperature: 0.6, topK: 500),
        SamplingParameters(topP: 0.1), SamplingParameters(topP: 0.5), SamplingParameters(temperature: 1.3, topP: 0.9),
        SamplingParameters(topP: 0.99),
        SamplingParameters(minP: 0.01), SamplingParameters(minP: 0.2), SamplingParameters(temperature: 0.5, minP: 0.5),
        SamplingParameters(temperature: 0.8, topK: 40, topP: 0.9), SamplingParameters(topK: 30, minP: 0.05),
        SamplingParameters(temperature: 0.7, topP: 0.8, minP: 0.02), SamplingParameters(temperature: 0.9, topK: 100, topP: 0.95, minP: 0.001),
    ]

    // Debug builds (the sanitizer runs) check smaller rows and fewer draws: the float64 reference
    // is ~50× slower unoptimized, and under ThreadSanitizer these two tests took ten minutes.
    #if DEBUG
    static let largeVocab = 4000, draws = 10_000
    #else
    static let largeVocab = 20000, draws = 40_000
    #endif

    /// top-k, top-p and min-p keep exactly the reference's tokens, with its probabilities, on small and
    /// vocabulary-sized rows from flat to peaked (on the flat large rows every token is below
    /// the first candidate threshold, so the ladder goes all the way down).
    func testTruncationKeepsExactlyTheReferenceSets() {
        var checked = 0, skipped = 0
        for (vocab, scale) in [(200, Float(1)), (200, 4), (Self.largeVocab, 0.5), (Self.largeVocab, 3), (Self.largeVocab, 8)] {
            let sampler = TokenSampler(vocabSize: vocab)
            for (row, q) in settings.enumerated() {
                let logits = randomLogits(vocab, scale: scale, seed: UInt64(vocab + row))
                let expected = reference(logits, q)
                if expected.margin < 2e-6 { skipped += 1; continue }
                let got = logits.withUnsafeBufferPointer { sampler.distribution($0.baseAddress!, parameters: q) }
                XCTAssertEqual(got.count, expected.tokens.count, "vocab \(vocab) scale \(scale) \(q)")
                let firstDifference = zip(got.map(\.token), expected.tokens).enumerated().first { $0.element.0 != $0.element.1 }
                XCTAssertNil(firstDifference, "vocab \(vocab) scale \(scale) \(q)")
                for (a, b) in zip(got.map(\.probability), expected.probabilities) { XCTAssertEqual(a, b, accuracy: 1e-6 + 1e-5 * b) }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 70)
        XCTAssertLessThan(skipped, 3)
    }

    /// Equal logits at the top-k and top-p boundaries: the lower token ids are kept.
    func testTiesGoToTheLowerTokenId() {
        let logits: [Float] = [0, 2, 1, 2, 2, 1, -1, 2]
        let sampler = TokenSampler(vocabSize: logits.count)
        func kept(_ q: SamplingParameters) -> [Int32] {
            logits.withUnsafeBufferPointer { sampler.distribution($0.baseAddress!, parameters: q).map(\.token) }
        }
        XCTAssertEqual(kept(SamplingParameters(topK: 2)), [1, 3])
        XCTAssertEqual(kept(SamplingParameters(topK: 5)), [1, 3, 4, 7, 2])
        XCTAssertEqual(kept(SamplingParameters(topP: 0.5)), [1, 3, 4])
        XCTAssertEqual(kept(.greedy), [1])
        XCTAssertEqual(kept(SamplingParameters(minP: 0.5)), [1, 3, 4, 7])
        XCTAssertEqual(kept(SamplingParameters(minP: 0.3)), [1, 3, 4, 7, 2, 5])
    }

    /// Draws follow the distribution: over 40 000 draws per setting (10 000 in debug builds), every token's frequency is
    /// within 5 standard errors (√(p(1−p)/n)) of its reference probability, no token outside the
    /// kept set is ever drawn, and each draw's log-prob is the reference's.
    func testEmpiricalFrequenciesMatchTheDistribution() {
        let logits = randomLogits(30, scale: 1.5, seed: 77)
        let sampler = TokenSampler(vocabSize: logits.count)
        let draws = Self.draws
        let cases = [SamplingParameters(), SamplingParameters(temperature: 0.5), SamplingParameters(temperature: 2, topK: 5),
                     SamplingParameters(topP: 0.8), SamplingParameters(minP: 0.1), SamplingParameters(temperature: 0.9, topK: 12, topP: 0.9, minP: 0.05)]
        for q in cases {
            let expected = reference(logits, q)
            let probability = Dictionary(uniqueKeysWithValues: zip(expected.tokens, expected.probabilities))
            var counts = [Int](repeating: 0, count: logits.count)
            var rng = SeededGenerator(seed: 5)
            var worstLogProb = 0.0
            let raw = logits.map { Double($0) }
            let rawLogSumExp = log(raw.reduce(0) { $0 + exp($1) })
            logits.withUnsafeBufferPointer { row in
                for _ in 0..<draws {
                    let s = sampler.sample(row.baseAddress!, parameters: q, using: &rng)
                    counts[Int(s.token)] += 1
                    if let p = probability[s.token] { worstLogProb = max(worstLogProb, abs(Double(s.logProb) - log(p))) }
                    XCTAssertEqual(Double(s.rawLogProb), raw[Int(s.token)] - rawLogSumExp, accuracy: 1e-5)
                }
            }
            XCTAssertLessThan(worstLogProb, 1e-5, "\(q)")
            for token in 0..<logits.count {
                let p = probability[Int32(token)] ?? 0
                let frequency = Double(counts[token]) / Double(draws)
                if p == 0 {
                    XCTAssertEqual(counts[token], 0, "token \(token) is outside the kept set of \(q)")
                } else {
                    XCTAssertLessThanOrEqual(abs(frequency - p), 5 * (p * (1 - p) / Double(draws)).squareRoot(), "token \(token), \(q)")
                }
            }
        }
    }

    /// As the temperature goes to 0, sampling becomes greedy decoding, with log-prob 0. (Rows whose
    /// two largest logits are closer than 0.05 are skipped: at T = 1e-3 the runner-up would still
    /// have probability above e⁻⁵⁰.)
    func testTemperatureNearZeroIsGreedy() {
        let sampler = TokenSampler(vocabSize: 1000)
        var rng = SeededGenerator(seed: 1)
        var checked = 0
        for seed in 0..<50 as Range<UInt64> {
            let logits = randomLogits(1000, scale: 3, seed: seed)
            let top = logits.sorted(by: >)
            if top[0] - top[1] < 0.05 { continue }
            checked += 1
            logits.withUnsafeBufferPointer { row in
                let greedy = sampler.sample(row.baseAddress!, parameters: .greedy, using: &rng)
                XCTAssertEqual(Int(greedy.token), logits.indices.max { logits[$0] < logits[$1] })
                XCTAssertEqual(greedy.logProb, 0)
                for q in [SamplingParameters(temperature: 1e-3), SamplingParameters(temperature: 1e-4, topP: 0.9)] {
                    let cold = sampler.sample(row.baseAddress!, parameters: q, using: &rng)
                    XCTAssertEqual(cold.token, greedy.token)
                    XCTAssertEqual(cold.rawLogProb, greedy.rawLogProb)
                    XCTAssertEqual(cold.logProb, 0, accuracy: 1e-6)
                }
            }
        }
        XCTAssertGreaterThan(checked, 40)
    }
}
