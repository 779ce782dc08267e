import Reward
import XCTest

final class CoherentRewardTests: XCTestCase {
    let sft: [Float] = [-1.0, -0.5, -2.0, -0.25]
    let pt: [Float] = [-1.5, -1.0, -1.0, -1.25]
    var sum: Double { zip(sft, pt).reduce(0) { $0 + Double($1.0) - Double($1.1) } }

    func testEOSPlacementPutsTheWholeSumOnTheLastToken() {
        let r = CoherentReward().compute(sft: sft, pt: pt, endedWithEOS: true)
        XCTAssertEqual(sum, 1.0)
        XCTAssertEqual(r.perToken, [0, 0, 0, 1.0])
        XCTAssertEqual(r.sum, 1.0)
        XCTAssertFalse(r.truncated)
    }

    func testAblations() {
        let tokenwise = CoherentReward(placement: .tokenwise).compute(sft: sft, pt: pt, endedWithEOS: true)
        XCTAssertEqual(tokenwise.perToken, [0.5, 0.5, -1.0, 1.0])
        let normalized = CoherentReward(placement: .lengthNormalized).compute(sft: sft, pt: pt, endedWithEOS: true)
        XCTAssertEqual(normalized.perToken, [0, 0, 0, 0.25])
    }

    func testTruncatedResponses() {
        let penalty = CoherentReward(truncation: .penalty(2)).compute(sft: sft, pt: pt, endedWithEOS: false)
        XCTAssertEqual(penalty.perToken, [0, 0, 0, -2])
        XCTAssertTrue(penalty.truncated)
        XCTAssertEqual(penalty.sum, 1.0, "the raw sum is still reported")
        let scored = CoherentReward(truncation: .score).compute(sft: sft, pt: pt, endedWithEOS: false)
        XCTAssertEqual(scored.perToken, [0, 0, 0, 1.0])
    }

    /// Both placements pay the same penalty for being cut off and keep what their placement gives
    /// the tokens the response has: nothing on a missing EOS, each token's own log-ratio token-wise
    /// (dropping those would suppress the very length growth the token-wise ablation is about).
    func testTruncatedTokenwiseResponsesKeepTheirPerTokenRewards() {
        let tokenwise = CoherentReward(placement: .tokenwise, truncation: .penalty(2)).compute(sft: sft, pt: pt, endedWithEOS: false)
        XCTAssertEqual(tokenwise.perToken, [0.5, 0.5, -1.0, 1.0 - 2])
        XCTAssertTrue(tokenwise.truncated)
        let clipped = CoherentReward(placement: .tokenwise, truncation: .penalty(2), clip: 0.75).compute(sft: sft, pt: pt, endedWithEOS: false)
        XCTAssertEqual(clipped.perToken, [0.5, 0.5, -0.75, 0.75 - 2])
        XCTAssertTrue(clipped.clipped)
        let scored = CoherentReward(placement: .tokenwise, truncation: .score).compute(sft: sft, pt: pt, endedWithEOS: false)
        XCTAssertEqual(scored.perToken, [0.5, 0.5, -1.0, 1.0])
        for placement in [CoherentReward.Placement.eos, .lengthNormalized] {
            XCTAssertEqual(CoherentReward(placement: placement, truncation: .penalty(2)).compute(sft: sft, pt: pt, endedWithEOS: false).perToken,
                           [0, 0, 0, -2])
        }
    }

    func testClippingIsOptInAndReported() {
        let plain = CoherentReward().compute(sft: [0], pt: [-30], endedWithEOS: true)
        XCTAssertEqual(plain.perToken, [30])
        XCTAssertFalse(plain.clipped)
        let clipped = CoherentReward(clip: 5).compute(sft: [0], pt: [-30], endedWithEOS: true)
        XCTAssertEqual(clipped.perToken, [5])
        XCTAssertTrue(clipped.clipped)
    }

    func testIdenticalModelsGiveExactlyZero() {
        for placement in CoherentReward.Placement.allCases {
            let r = CoherentReward(placement: placement).compute(sft: sft, pt: sft, endedWithEOS: true)
            XCTAssertEqual(r.perToken, [0, 0, 0, 0])
            XCTAssertEqual(r.sum, 0)
        }
    }
}
