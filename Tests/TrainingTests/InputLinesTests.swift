import Foundation
import ModelFiles
import TestSupport
import Training
import Transformer
import XCTest

/// `srppo generate` and `srppo score` input lines as requests.
final class InputLinesTests: XCTestCase {
    private func lines(_ text: String) throws -> [JSONLines.Line] {
        let path = try temporaryFolder(self) + "/input.jsonl"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return try JSONLines.read(path)
    }

    /// A stand-in tokenizer: a prompt's characters' codes after BOS, a response's then EOS.
    private struct CharacterEncoder: RecordEncoder {
        func encodePrompt(_ record: DataRecord) throws -> [Int32] { [1] + (record.prompt ?? "").unicodeScalars.map { Int32($0.value % 60) } }
        func encodeResponse(_ record: DataRecord) throws -> [Int32] { (record.response ?? "").unicodeScalars.map { Int32($0.value % 60) } + [2] }
    }

    private func requests(_ text: String, encoder: RecordEncoder? = nil) throws -> [GenerationRequest] {
        try GenerationInput.requests(lines(text), config: SFTTests.config, encoder: encoder, maxNewTokens: 5,
                                     sampling: SamplingParameters(temperature: 0.5), firstSeed: 10, endTokens: [2], stopSequences: [[7, 8]])
    }

    /// Line i samples with the first seed + i unless it names its own; text prompts go through the encoder.
    func testGenerationRequestsTakeTheirLinesSeedOrTheirIndex() throws {
        let made = try requests("{\"prompt_ids\":[1,3]}\n{\"prompt_ids\":[1,4],\"seed\":99}\n{\"prompt\":\"AB\"}\n", encoder: CharacterEncoder())
        XCTAssertEqual(made.map(\.seed), [10, 99, 12])
        XCTAssertEqual(made.map(\.prompt), [[1, 3], [1, 4], [1, 5, 6]])
        for request in made {
            XCTAssertEqual(request.maxNewTokens, 5)
            XCTAssertEqual(request.endTokens, [2])
            XCTAssertEqual(request.stopSequences, [[7, 8]])
        }
    }

    func testGenerationLineProblemsNameTheirLine() throws {
        func problem(_ text: String) -> String {
            do { _ = try requests(text) } catch { return "\(error)".components(separatedBy: ".jsonl:").last ?? "\(error)" }
            return "ok"
        }
        XCTAssertEqual(problem("{\"prompt_ids\":[1]}\n{\"answer\":1}"), "2: missing field: needs \"prompt_ids\", \"prompt\" or \"messages\"")
        XCTAssertEqual(problem("{\"prompt\":\"hi\"}"), "1: text prompts need a tokenizer, and this model has none: use \"prompt_ids\"")
        XCTAssertTrue(problem("{\"prompt_ids\":[1],\"seed\":-1}").hasPrefix("1: "))
    }

    /// Id lines need no tokenizer, so the encoder is never made for them; one text line makes it once.
    func testScoreRequestsMakeTheEncoderOnlyForText() throws {
        var made = 0
        let encoder = { () throws -> RecordEncoder? in
            made += 1
            return CharacterEncoder()
        }
        let ids = try ScoreInput.requests(lines("{\"prompt_ids\":[1,3],\"response_ids\":[4,2]}\n"), textEncoder: encoder)
        XCTAssertEqual(made, 0)
        XCTAssertEqual(ids, [ScoringRequest(prompt: [1, 3], response: [4, 2])])
        let mixed = try ScoreInput.requests(lines("{\"prompt_ids\":[1],\"response_ids\":[2]}\n{\"prompt\":\"A\",\"response\":\"B\"}\n{\"prompt\":\"B\",\"response\":\"A\"}\n"),
                                            textEncoder: encoder)
        XCTAssertEqual(made, 1)
        XCTAssertEqual(mixed, [ScoringRequest(prompt: [1], response: [2]), ScoringRequest(prompt: [1, 5], response: [6, 2]),
                               ScoringRequest(prompt: [1, 6], response: [5, 2])])
    }
}
