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

final class TaskSplitTests: XCTestCase {
    let sizes = TaskSizes(demonstrations: 60, ppoPrompts: 40, evalOutOfDomain: 30, evalInDomain: 20)

    func testSameSeedSameBytesOtherSeedOtherBytes() throws {
        let first = try TaskGenerator(seed: 3).generate(sizes).files(seed: 3)
        let again = try TaskGenerator(seed: 3).generate(sizes).files(seed: 3)
        let other = try TaskGenerator(seed: 4).generate(sizes).files(seed: 4)
        XCTAssertEqual(first.map(\.name), ["demos.jsonl", "ppo_prompts.jsonl", "eval_ood.jsonl", "eval_in_domain.jsonl", "manifest.json"])
        XCTAssertEqual(first.map(\.data), again.map(\.data))
        XCTAssertNotEqual(first[0].data, other[0].data)
    }

    func testOutOfDomainCombinationsNeverTrain() throws {
        let data = try TaskGenerator(seed: 5).generate(sizes)
        XCTAssertEqual([data.demonstrations.count, data.ppoPrompts.count, data.evalOutOfDomain.count, data.evalInDomain.count],
                       [60, 40, 30, 20])
        let combination = { (task: GeneratedTask) in task.row.instructionIDs.sorted() }
        let training = Set(data.trainingCombinations)
        let heldOut = Set(data.heldOutCombinations)
        XCTAssertTrue(training.isDisjoint(with: heldOut))
        XCTAssertEqual(training.count + heldOut.count, TaskGenerator.combinations().count)
        for task in data.demonstrations + data.ppoPrompts + data.evalInDomain {
            XCTAssertTrue(training.contains(combination(task)), "\(combination(task))")
        }
        for task in data.evalOutOfDomain {
            XCTAssertTrue(heldOut.contains(combination(task)), "\(combination(task))")
            XCTAssertGreaterThan(task.row.instructionIDs.count, 1)
        }
        // Every single instruction is trained on; about a fifth of the multi-instruction combinations is held out.
        XCTAssertEqual(Set(TaskGenerator.instructionIDs.map { [$0] }).subtracting(training), [])
        XCTAssertEqual(TaskGenerator.instructionIDs.count, 24)
        let multi = Double(TaskGenerator.combinations().count - 24)
        XCTAssertEqual(Double(heldOut.count) / multi, TaskGenerator.heldOutFraction, accuracy: 0.01)
        // Prompts are unique across all sets.
        let prompts = (data.demonstrations + data.ppoPrompts + data.evalOutOfDomain + data.evalInDomain).map(\.row.prompt)
        XCTAssertEqual(Set(prompts).count, prompts.count)
    }
}
