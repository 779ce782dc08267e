import Evaluation
import Foundation
import ModelFiles
import TestSupport
import XCTest

final class EvaluationInputTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws { directory = try temporaryFolder(self) }

    private func file(_ name: String, _ lines: [String]) throws -> String {
        let path = directory + "/" + name
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private let question = "{\"question\":\"2+2?\",\"answer\":\"four #### 4\",\"response\":\"It is 4.\",\"reference\":\"#### 4\"}"

    /// A stored-response file is a set named before its first dot, answered by the field asked for.
    func testStoredResponsesComeFromTheFieldAsked() throws {
        let path = try file("math.responses.jsonl", [question, "{\"question\":\"3+3?\",\"answer\":\"#### 6\",\"response\":\"7\"}"])
        let job = try EvaluationJob.storedResponses(in: path, field: "response")
        XCTAssertEqual(job.set.name, "math")
        XCTAssertEqual(job.set.prompts, ["2+2?", "3+3?"])
        XCTAssertEqual(try job.respond(job.set.prompts), ["It is 4.", "7"])
        let (result, rows) = try job.evaluate(scorer: IFEvalScorer())
        XCTAssertEqual(result.rows, 2)
        XCTAssertEqual(rows.map(\.correct), [true, false])

        XCTAssertThrowsError(try EvaluationJob.storedResponses(in: path, field: "reference")) { error in
            XCTAssertEqual("\(error)", "\(path):2: missing field \"reference\"")
        }
    }

    /// Problems name the file and line: an empty file, a row of neither kind, and a row the checker
    /// refuses (found before anything is generated).
    func testProblemsNameTheirLine() throws {
        XCTAssertThrowsError(try EvaluationInput.parseSet(name: "empty", lines: [])) { XCTAssertEqual("\($0)", "empty: no rows") }
        let odd = try file("odd.jsonl", [#"{"text":"hi"}"#])
        XCTAssertThrowsError(try EvaluationJob(file: odd) { _, _ in [] }) { error in
            XCTAssertEqual("\(error)", "\(odd):1: neither an IFEval row (\"instruction_id_list\") nor a GSM8K row (\"question\")")
        }
        let bad = try file("bad.jsonl", [question, #"{"question":"1+1?","answer":"two"}"#])
        var asked = false
        let job = try EvaluationJob(file: bad) { _, prompts in
            asked = true
            return prompts
        }
        XCTAssertEqual(job.set.name, "bad")
        XCTAssertThrowsError(try job.validate(scorer: IFEvalScorer())) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(bad):2: "), "\(error)")
        }
        XCTAssertFalse(asked)
    }

    /// A details line is the row's JSON with its set added.
    func testDetailObjectCarriesTheSet() throws {
        let path = try file("math.jsonl", [question])
        let (_, rows) = try EvaluationJob.storedResponses(in: path, field: "response").evaluate(scorer: IFEvalScorer())
        let object = try EvaluationInput.detailObject(set: "math", row: rows[0])
        XCTAssertEqual(object["set"] as? String, "math")
        XCTAssertEqual(object["response"] as? String, "It is 4.")
        XCTAssertEqual(object["correct"] as? Bool, true)
    }
}
