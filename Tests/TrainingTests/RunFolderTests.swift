import Foundation
import TestSupport
import Training
import XCTest

final class RunFolderTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws { directory = try temporaryFolder(self) }

    /// A --config file's settings, or errors that name the file and the kind of settings.
    func testSettingsFileErrorsNameTheFile() throws {
        let good = directory + "/sft.json", bad = directory + "/bad.json", missing = directory + "/none.json"
        var sft = SFTConfig()
        sft.epochs = 7
        try JSONEncoder().encode(sft).write(to: URL(fileURLWithPath: good))
        try Data(#"{"epochs":"x"}"#.utf8).write(to: URL(fileURLWithPath: bad))
        XCTAssertEqual(try RunFolder.settings(SFTConfig.self, file: good, kind: "SFT").epochs, 7)
        XCTAssertThrowsError(try RunFolder.settings(SFTConfig.self, file: missing, kind: "SFT")) {
            XCTAssertEqual("\($0)", "\(missing): cannot read file")
        }
        XCTAssertThrowsError(try RunFolder.settings(PPOConfig.self, file: bad, kind: "PPO")) {
            XCTAssertTrue("\($0)".hasPrefix("\(bad): not a valid PPO config: "), "\($0)")
        }
    }

    /// A new run refuses a folder with checkpoints.
    func testNewRunRefusesCheckpoints() throws {
        let folder = try RunFolder(path: directory + "/run")
        try folder.requireNoCheckpoints()
        _ = try folder.writeCheckpoint(step: 1, keep: 2) { _ in }
        XCTAssertThrowsError(try folder.requireNoCheckpoints()) {
            XCTAssertEqual("\($0)", "\(folder.path) already has checkpoints: use --resume to continue it, or another --out")
        }
    }

    /// Held-out demonstrations as score input: one {"source","prompt_ids","response_ids"} line each.
    func testScoreInputLines() throws {
        let folder = try RunFolder(path: directory + "/run")
        let examples = [TokenizedExample(prompt: [1, 5], response: [6, 2], source: "d.jsonl:3"),
                        TokenizedExample(prompt: [1], response: [2], source: "d.jsonl:4")]
        try folder.writeScoreInput(examples, name: "heldout.jsonl")
        let text = try String(contentsOfFile: folder.path + "/heldout.jsonl", encoding: .utf8)
        XCTAssertEqual(text, """
            {"prompt_ids":[1,5],"response_ids":[6,2],"source":"d.jsonl:3"}
            {"prompt_ids":[1],"response_ids":[2],"source":"d.jsonl:4"}

            """)
    }
}
