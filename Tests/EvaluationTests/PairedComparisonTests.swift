import Evaluation
import Compute
import XCTest

final class PairedComparisonTests: XCTestCase {
    /// 200 tasks, B better on 70 and worse on 30: mean 0.2, standard error √(0.5 − 0.04) / √200 =
    /// 0.048, so the normal approximation gives [0.106, 0.294]; the percentile bootstrap lands within
    /// a hundredth of it and calls it a win. The same seed gives the same interval.
    func testIntervalMatchesTheNormalApproximationAndGivesTheVerdict() {
        let differences = [Double](repeating: 1, count: 70) + [Double](repeating: -1, count: 30) + [Double](repeating: 0, count: 100)
        var rng = SeededGenerator(seed: 1)
        let c = PairedComparison.bootstrap(differences, using: &rng)
        XCTAssertEqual(c.tasks, 200)
        let standardError = (0.5 - 0.04).squareRoot() / 200.0.squareRoot()
        XCTAssertEqual(c.meanDifference, 0.2, accuracy: 1e-12)
        XCTAssertEqual(c.lower, 0.2 - 1.96 * standardError, accuracy: 0.01)
        XCTAssertEqual(c.upper, 0.2 + 1.96 * standardError, accuracy: 0.01)
        XCTAssertEqual(c.verdict, .beats)
        var again = SeededGenerator(seed: 1)
        XCTAssertEqual(PairedComparison.bootstrap(differences, using: &again), c)
    }

    func testVerdicts() {
        var rng = SeededGenerator(seed: 2)
        XCTAssertEqual(PairedComparison.bootstrap([0, 0, 0, 0], using: &rng).verdict, .noDifference)
        let none = PairedComparison.bootstrap([1, -1, 1, -1, 0, 0], using: &rng)
        XCTAssertEqual(none.verdict, .noDifference)
        XCTAssertLessThan(none.lower, 0)
        XCTAssertGreaterThan(none.upper, 0)
        XCTAssertEqual(PairedComparison.bootstrap([Double](repeating: -0.5, count: 30) + [0.5], using: &rng).verdict, .worse)
    }
}

final class AUROCTests: XCTestCase {
    /// Against counting every pair by hand (the definition), with ties.
    func testAUROCCountsPairs() {
        let positives: [Double] = [3, 5, 5, 9, 1], negatives: [Double] = [2, 5, 0, 4]
        var wins = 0.0
        for p in positives { for n in negatives { wins += p > n ? 1 : p == n ? 0.5 : 0 } }
        XCTAssertEqual(auroc(positives: positives, negatives: negatives), wins / 20, accuracy: 1e-12)
        XCTAssertEqual(auroc(positives: [2, 3], negatives: [0, 1]), 1)
        XCTAssertEqual(auroc(positives: [0, 1], negatives: [2, 3]), 0)
        XCTAssertEqual(auroc(positives: [1, 1], negatives: [1]), 0.5)
    }
}
