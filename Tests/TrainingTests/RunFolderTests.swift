import Foundation
import TestSupport
import Training
import XCTest

final class RunFolderTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws { directory = try temporaryFolder(self) }

    /// A --config file's settings over the defaults (a file needs only what it changes, nested groups
    /// key by key), or errors that name the file, the kind of settings and the field.
    func testSettingsFilesLayerOverTheDefaultsAndNameWhatIsWrong() throws {
        func write(_ name: String, _ json: String) throws -> String {
            let path = directory + "/" + name
            try Data(json.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        var full = SFTConfig()
        full.epochs = 7
        let good = directory + "/sft.json"
        try JSONEncoder().encode(full).write(to: URL(fileURLWithPath: good))
        XCTAssertEqual(try RunFolder.settings(SFTConfig.self, file: good, kind: "SFT", over: SFTConfig()), full)

        var expected = PPOConfig()
        expected.steps = 3
        expected.optimizer.weightDecay = 0.5
        let partial = try write("partial.json", #"{"steps": 3, "optimizer": {"weightDecay": 0.5}}"#)
        XCTAssertEqual(try RunFolder.settings(PPOConfig.self, file: partial, kind: "PPO", over: PPOConfig()), expected)

        func message(_ file: String) -> String {
            do { _ = try RunFolder.settings(PPOConfig.self, file: file, kind: "PPO", over: PPOConfig()); return "no error" } catch { return "\(error)" }
        }
        let missing = directory + "/none.json"
        XCTAssertEqual(message(missing), "\(missing): cannot read file")
        let badValue = try write("bad.json", #"{"epochs": "x"}"#)
        XCTAssertEqual(message(badValue), "\(badValue): not a valid PPO config: field \"epochs\": expected an integer")
        let misspelt = try write("misspelt.json", #"{"step": 3}"#)
        XCTAssertTrue(message(misspelt).hasPrefix("\(misspelt): not a valid PPO config: unknown setting \"step\" (known: "), message(misspelt))
        let array = try write("array.json", "[1]")
        XCTAssertEqual(message(array), "\(array): not a valid PPO config: expected a JSON object")
    }

    /// A run-config.json saved before a setting existed reads with that setting's default.
    func testSavedConfigWithoutANewerSettingReadsItsDefault() throws {
        struct Saved: Codable, Equatable { var prompts: [String]; var ppo: PPOConfig }
        let folder = try RunFolder(path: directory + "/run")
        var ppo = PPOConfig()
        ppo.steps = 5
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Saved(prompts: ["p.jsonl"], ppo: ppo))) as! [String: Any]
        var saved = object["ppo"] as! [String: Any]
        saved.removeValue(forKey: "savePolicyAt")
        object["ppo"] = saved
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: folder.path + "/run-config.json"))
        XCTAssertEqual(try folder.loadConfig(Saved.self, over: Saved(prompts: [], ppo: PPOConfig())), Saved(prompts: ["p.jsonl"], ppo: ppo))
        try Data("[]".utf8).write(to: URL(fileURLWithPath: folder.path + "/run-config.json"))
        XCTAssertThrowsError(try folder.loadConfig(Saved.self, over: Saved(prompts: [], ppo: PPOConfig()))) {
            XCTAssertEqual("\($0)", "\(folder.path)/run-config.json: cannot be read: expected a JSON object")
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
