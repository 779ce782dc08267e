import Foundation
import Reward
import Compute
import Training
import XCTest

final class PPOMathTests: XCTestCase {
    func testGAEMatchesHandComputation() {
        let r = [0.0, 0.0, 1.0], v = [0.5, 0.2, 0.4]
        let (a, ret) = PPOMath.gae(rewards: r, values: v, gamma: 0.9, lambda: 0.8)
        let d2 = 1.0 - 0.4
        let d1 = 0.0 + 0.9 * 0.4 - 0.2
        let d0 = 0.0 + 0.9 * 0.2 - 0.5
        let a2 = d2, a1 = d1 + 0.72 * a2, a0 = d0 + 0.72 * a1
        XCTAssertEqual(a[2], a2, accuracy: 1e-12)
        XCTAssertEqual(a[1], a1, accuracy: 1e-12)
        XCTAssertEqual(a[0], a0, accuracy: 1e-12)
        XCTAssertEqual(ret, [a0 + 0.5, a1 + 0.2, a2 + 0.4])
        // γ = λ = 1: the advantage is the return-to-go minus the value.
        let (a1s, _) = PPOMath.gae(rewards: [1, 2, 3], values: [0, 0, 0], gamma: 1, lambda: 1)
        XCTAssertEqual(a1s, [6, 5, 3])
    }

    func testWhitening() {
        let w = PPOMath.whiten([[1, 2], [3, 4, 5]]).flatMap { $0 }
        XCTAssertEqual(w.reduce(0, +), 0, accuracy: 1e-12)
        let sd = (w.reduce(0) { $0 + $1 * $1 } / 4).squareRoot()
        XCTAssertEqual(sd, 1, accuracy: 1e-6)
    }

    func testPolicyLossClipsOnTheRightSide() {
        // Unclipped: gradient −ρA.
        let free = PPOMath.policyLoss(logProb: log(1.1), oldLogProb: 0, advantage: 2, clip: 0.2)
        XCTAssertEqual(free.loss, -2.2, accuracy: 1e-12)
        XCTAssertEqual(free.gradient, -2.2, accuracy: 1e-12)
        XCTAssertFalse(free.clipped)
        // Positive advantage, ratio above 1+ε: clipped, no gradient.
        let high = PPOMath.policyLoss(logProb: log(1.5), oldLogProb: 0, advantage: 2, clip: 0.2)
        XCTAssertEqual(high.loss, -2.4, accuracy: 1e-12)
        XCTAssertEqual(high.gradient, 0)
        XCTAssertTrue(high.clipped)
        // Negative advantage, ratio above 1+ε: the unclipped term is smaller, so it stays.
        let badHigh = PPOMath.policyLoss(logProb: log(1.5), oldLogProb: 0, advantage: -1, clip: 0.2)
        XCTAssertEqual(badHigh.loss, 1.5, accuracy: 1e-12)
        XCTAssertEqual(badHigh.gradient, 1.5, accuracy: 1e-12)
        // Negative advantage, ratio below 1−ε: clipped.
        let low = PPOMath.policyLoss(logProb: log(0.5), oldLogProb: 0, advantage: -1, clip: 0.2)
        XCTAssertEqual(low.loss, 0.8, accuracy: 1e-12)
        XCTAssertEqual(low.gradient, 0)
        // The gradient is the derivative of the loss (finite differences, unclipped case).
        let h = 1e-6
        let f = { (lp: Double) in PPOMath.policyLoss(logProb: lp, oldLogProb: 0.1, advantage: -0.7, clip: 0.2).loss }
        XCTAssertEqual((f(0.2 + h) - f(0.2 - h)) / (2 * h),
                       PPOMath.policyLoss(logProb: 0.2, oldLogProb: 0.1, advantage: -0.7, clip: 0.2).gradient, accuracy: 1e-6)
    }

    func testValueLoss() {
        let plain = PPOMath.valueLoss(value: 1.0, oldValue: 0.9, target: 2.0, clip: 0.2)
        XCTAssertEqual(plain.loss, 0.5, accuracy: 1e-12)
        XCTAssertEqual(plain.gradient, -1, accuracy: 1e-12)
        // The value moved past the clip range away from the target: the clipped loss is larger and flat.
        let away = PPOMath.valueLoss(value: 0.0, oldValue: 1.0, target: 1.5, clip: 0.2)
        XCTAssertEqual(away.loss, 0.5 * 1.5 * 1.5, accuracy: 1e-12)
        let moved = PPOMath.valueLoss(value: 2.0, oldValue: 1.0, target: 0.5, clip: 0.2)
        XCTAssertEqual(moved.loss, 0.5 * 1.5 * 1.5, accuracy: 1e-12)
        XCTAssertEqual(moved.gradient, 1.5, accuracy: 1e-12)
        let movedFar = PPOMath.valueLoss(value: 0.0, oldValue: 1.0, target: 1.2, clip: 0.2)
        XCTAssertEqual(movedFar.loss, 0.5 * 1.2 * 1.2, accuracy: 1e-12)
        XCTAssertEqual(movedFar.gradient, -1.2, accuracy: 1e-12)
        XCTAssertEqual(PPOMath.valueLoss(value: 3, oldValue: 0, target: 1, clip: nil).gradient, 2)
        // Inside the range nothing is clipped, whatever the rounding: V_old + (V − V_old) is not V when V
        // is near 0 and V_old is not (here 1.39e-17 for 1e-17), and that alone must not count as a clip.
        let nearZero = PPOMath.valueLoss(value: 1e-17, oldValue: 0.1, target: -1e-17, clip: 0.2)
        XCTAssertFalse(nearZero.clipped)
        XCTAssertEqual(nearZero.loss, 0.5 * 2e-17 * 2e-17)
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<10_000 {
            let old = 0.1 * Double(rng.nextNormal()), target = 3 * Double(rng.nextNormal())
            let v = old + 0.2 * (2 * Double(rng.next() % 1_000_000) / 1e6 - 1)
            let inside = PPOMath.valueLoss(value: v, oldValue: old, target: target, clip: 0.2)
            XCTAssertFalse(inside.clipped, "v \(v), old \(old), target \(target)")
            XCTAssertEqual(inside.loss, 0.5 * (v - target) * (v - target))
        }
    }

    func testExplainedVarianceAndKLController() {
        XCTAssertEqual(PPOMath.explainedVariance(predictions: [1, 2, 3], targets: [1, 2, 3]), 1)
        XCTAssertEqual(PPOMath.explainedVariance(predictions: [2, 2, 2], targets: [1, 2, 3]), 0, accuracy: 1e-12)
        var kl = KLController(beta: 0.1, target: 6, horizon: 100)
        kl.update(observedKL: 12, responses: 10)
        XCTAssertEqual(kl.beta, 0.1 * (1 + 0.2 * 0.1), accuracy: 1e-12)
        kl.update(observedKL: 5.4, responses: 10)
        XCTAssertEqual(kl.beta, 0.1 * 1.02 * (1 - 0.1 * 0.1), accuracy: 1e-12)
        var fixed = KLController(beta: 0.05)
        fixed.update(observedKL: 100, responses: 10)
        XCTAssertEqual(fixed.beta, 0.05)
    }

    /// With γ = 1 the EOS placement and the token-wise placement differ, for a response that ended,
    /// only by a baseline: the log-ratio accumulated before each token, S_t = Σ_{k<t} ratio_k, which
    /// depends on the prefix alone. A critic V_t = S_t + U_t on the EOS rewards gives exactly the
    /// advantages (any λ) of a critic U_t on the token-wise rewards. So the EOS placement learns what
    /// the token-wise one does only if its critic learns S_t, which needs PT's log-probs that the
    /// critic (an SFT trunk) never sees (README: the critic paragraph of the results).
    func testEOSPlacementWithTheAccumulatedLogRatioAsBaselineIsTheTokenwisePlacement() {
        let sft: [Float] = [-1.2, -0.4, -2.5, -0.9, -0.3], pt: [Float] = [-2.0, -0.5, -1.0, -3.1, -0.8]
        let ratios = zip(sft, pt).map { Double($0) - Double($1) }
        let eos = CoherentReward(placement: .eos).compute(sft: sft, pt: pt, endedWithEOS: true).perToken
        let tokenwise = CoherentReward(placement: .tokenwise).compute(sft: sft, pt: pt, endedWithEOS: true).perToken
        let critic: [Double] = [0.7, -0.2, 1.1, 0.4, -0.6]   // any U_t
        let accumulated = ratios.indices.map { t in ratios[..<t].reduce(0, +) }
        for lambda in [1.0, 0.95, 0.5] {
            let a = PPOMath.gae(rewards: eos, values: zip(accumulated, critic).map(+), gamma: 1, lambda: lambda).advantages
            let b = PPOMath.gae(rewards: tokenwise, values: critic, gamma: 1, lambda: lambda).advantages
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-12, "λ \(lambda)") }
        }
        // Without that baseline the two differ (the EOS advantages carry the past log-ratios).
        let plain = PPOMath.gae(rewards: eos, values: critic, gamma: 1, lambda: 1).advantages
        let reference = PPOMath.gae(rewards: tokenwise, values: critic, gamma: 1, lambda: 1).advantages
        XCTAssertGreaterThan(zip(plain, reference).map { abs($0 - $1) }.max()!, 0.5)
    }
}
