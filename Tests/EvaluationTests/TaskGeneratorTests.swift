import Evaluation
import XCTest

final class TaskGeneratorTests: XCTestCase {
    /// Every compatible combination, several times with different draws: the reference written for
    /// it must pass all of its own checkers (makeTask throws otherwise).
    func testEveryCombinationsReferenceFollowsItsInstructions() throws {
        let generator = TaskGenerator(seed: 7)
        var failures: [String] = []
        for (index, combination) in TaskGenerator.combinations().enumerated() {
            for variant in 0..<4 {
                do {
                    _ = try generator.makeTask(combination, key: index, variant: UInt64(variant))
                } catch {
                    failures.append("\(error)")
                }
            }
        }
        XCTAssert(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(6).joined(separator: "\n"))")
    }
}
