import Foundation
import Workflow
import XCTest

/// How a pipeline's settings are put together from a preset, a --config file and flags, and what
/// is refused with which message.
final class PipelineConfigTests: XCTestCase {
    private func file(_ object: [String: Any]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString).json").path
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func failure(_ body: () throws -> PipelineConfig) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testTheFileReplacesThePresetAndTheFlagsReplaceTheFile() throws {
        let path = try file(["ppo_steps": 7, "seeds": [4, 5], "eval_args": ["--batch-size", "4"]])
        let config = try PipelineConfig.layered(preset: "medium", file: path, overrides: ["model": "pt.gguf", "seeds": [9]])
        var expected = PipelineConfig.medium
        expected.model = "pt.gguf"
        expected.ppoSteps = 7
        expected.seeds = [9]
        expected.evalArgs = ["--batch-size", "4"]
        XCTAssertEqual(config, expected)
        XCTAssertEqual(config.scarcitySteps, 15)
        var small = PipelineConfig.small
        small.model = "pt.gguf"
        XCTAssertEqual(try PipelineConfig.layered(preset: "small", file: nil, overrides: ["model": "pt.gguf"]), small)
        XCTAssertEqual(small.scarcitySteps, small.ppoSteps)
    }

    func testAMisspeltOrMissingSettingIsNamed() throws {
        let misspelt = try file(["ppo_step": 3])
        XCTAssertEqual(failure { try PipelineConfig.layered(preset: "small", file: misspelt, overrides: ["model": "m"]) },
                       "\(misspelt): unknown pipeline setting \"ppo_step\" (known: " + PipelineConfig.CodingKeys.allCases.map(\.rawValue).sorted()
                       .joined(separator: ", ") + ")")
        XCTAssertEqual(failure { try PipelineConfig.layered(preset: "small", file: nil, overrides: [:]) },
                       "the pipeline needs the pretrained model: --model PATH (or \"model\" in --config)")
        XCTAssertEqual(failure { try PipelineConfig.layered(preset: "tiny", file: nil, overrides: ["model": "m"]) },
                       "--preset must be small, medium or large, not 'tiny'")
        var withoutSeed = try JSONSerialization.jsonObject(with: JSONEncoder().encode(PipelineConfig.small)) as! [String: Any]
        withoutSeed["data_seed"] = nil
        XCTAssertEqual(failure { try PipelineConfig.decode(layers: [withoutSeed], source: "x") }, "pipeline setting \"data_seed\" is missing")
        let wrongType = try file(["demos": "many"])
        XCTAssertTrue(failure { try PipelineConfig.layered(preset: "small", file: wrongType, overrides: ["model": "m"]) }
            .hasPrefix("\(wrongType): not a valid pipeline config: field \"demos\""))
    }

    func testSettingsTheStagesCannotRunWithAreRefused() throws {
        let cases: [([String: Any], String)] = [
            (["demos": 0], "pipeline setting \"demos\" must be at least 1"),
            (["placements": ["eos", "sideways"]], "unknown reward placement 'sideways' (use eos, tokenwise or length-normalized)"),
            (["seeds": [1, 1]], "seeds and placements must not repeat"),
            (["scarcity_demos": [500]], "scarcity_demos: 500 must be between 1 and demos (160)"),
            (["daemon": "/run/srppod.sock"], "sft_per_seed trains one SFT model per seed, but a daemon serves one: leave out --daemon or sft_per_seed"),
        ]
        for (overrides, message) in cases {
            XCTAssertEqual(failure { try PipelineConfig.layered(preset: "medium", file: nil, overrides: overrides.merging(["model": "m"]) { a, _ in a }) },
                           message)
        }
    }

    /// A pipeline.json written before sft_per_seed, scarcity_demos and reward_sanity existed (or by
    /// a preset that left them out) reads as the same settings, so that folder still continues.
    func testAnOlderPipelineJSONReadsAsTheSameSettings() throws {
        var object: [String: Any] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(PipelineConfig.small)) as! [String: Any]
        for key in ["sft_per_seed", "scarcity_demos", "reward_sanity", "eval_in_domain", "eval_args"] { object[key] = nil }
        XCTAssertEqual(try PipelineConfig.decode(layers: [object], source: "pipeline.json"), PipelineConfig.small)
    }
}
