import Foundation
import Training
import XCTest

final class DataTests: XCTestCase {
    private func load(_ text: String, maxLength: Int = 10) -> String {
        let path = NSTemporaryDirectory() + "data-\(UUID().uuidString).jsonl"
        try! Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let examples = try DataLoader.demonstrations(path: path, encoder: nil, limits: .init(vocabularySize: 50, maxLength: maxLength))
            return "ok \(examples.count)"
        } catch {
            return "\(error)".replacingOccurrences(of: path, with: "FILE")
        }
    }

    func testEveryBadLineIsNamedBeforeTraining() {
        let good = #"{"prompt_ids":[1,2],"response_ids":[3,2]}"#
        XCTAssertEqual(load(good + "\n\n" + good + "\n"), "ok 2")
        XCTAssertEqual(load(good + "\n{\"prompt_ids\":[1,2],"), "FILE:2: not valid JSON")
        XCTAssertEqual(load("[1,2]"), "FILE:1: expected a JSON object")
        XCTAssertEqual(load(#"{"answer":"x"}"#),
                       "FILE:1: missing field: needs \"prompt\" and \"response\", \"messages\", or \"prompt_ids\" and \"response_ids\"")
        XCTAssertEqual(load(#"{"prompt":"hi"}"#), "FILE:1: missing field \"response\" (or a final assistant message in \"messages\")")
        XCTAssertEqual(load(#"{"prompt":"hi","response":""}"#), "FILE:1: empty response")
        XCTAssertEqual(load(#"{"prompt":"hi","response":"there"}"#),
                       "FILE:1: text data needs a tokenizer, and this model has none: use prompt_ids/response_ids")
        XCTAssertEqual(load(#"{"prompt_ids":[1],"response_ids":[]}"#), "FILE:1: empty response")
        XCTAssertEqual(load(#"{"prompt_ids":[1],"response_ids":[50]}"#), "FILE:1: token id 50 is outside the vocabulary (0..<50)")
        XCTAssertEqual(load(#"{"prompt_ids":[1,2,3,4,5,6],"response_ids":[1,2,3,4,5]}"#),
                       "FILE:1: too long for the context: 11 tokens, the limit is 10")
        XCTAssertEqual(load(#"{"prompt_ids":[1.5],"response_ids":[2]}"#), "FILE:1: field \"prompt_ids\": element 0 (1.5) is not an integer token id")
        XCTAssertEqual(load(#"{"prompt_ids":"1 2","response_ids":[2]}"#), "FILE:1: field \"prompt_ids\": expected an array")
        XCTAssertEqual(load(""), "FILE: no records")
    }
}
