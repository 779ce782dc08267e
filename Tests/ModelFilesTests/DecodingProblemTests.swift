import Foundation
import ModelFiles
import XCTest

/// The one wording of JSON decoding errors: each kind of error names its field (array indices as
/// numbers) and says what was expected.
final class DecodingProblemTests: XCTestCase {
    private struct Item: Decodable { var ids: [Int]; var name: String }
    private struct Request: Decodable { var items: [Item] }

    private func problem(_ json: String) -> DecodingProblem? {
        do { _ = try JSONDecoder().decode(Request.self, from: Data(json.utf8)); return nil } catch { return DecodingProblem(error) }
    }

    func testEachDecodingErrorNamesItsField() {
        let cases: [(String, String?, String)] = [
            (#"{"items": [{"ids": [1]}]}"#, "items.0.name", #"missing field "items.0.name""#),
            (#"{"items": [{"ids": "1", "name": "a"}]}"#, "items.0.ids", #"field "items.0.ids": expected an array"#),
            (#"{"items": [{"ids": [1, "x"], "name": "a"}]}"#, "items.0.ids.1", #"field "items.0.ids.1": expected an integer"#),
            (#"{"items": [{"ids": [null], "name": "a"}]}"#, "items.0.ids.0", #"field "items.0.ids.0": null where an integer is expected"#),
            (#"[1, 2]"#, nil, "expected a JSON object"),
            (#"{"items": "#, nil, "not valid JSON"),
        ]
        for (json, field, text) in cases {
            let found = problem(json)
            XCTAssertEqual(found?.field, field, json)
            XCTAssertEqual(found?.description, text, json)
            XCTAssertEqual(found?.isSyntaxError, json == #"{"items": "#, json)
        }
    }
}
