import Evaluation
import ModelFiles
import Foundation

/// What is wrong with a pipeline's settings or one of its stages, in one line.
public struct PipelineError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// A pipeline's settings, as pipeline.json holds them. They come in layers, each a JSON object with
/// these keys: `defaults`, then a preset, then the --config file, then the command's flags; a later
/// layer's keys replace an earlier one's (`layered`).
public struct PipelineConfig: Codable, Equatable, Sendable {
    /// The pretrained model PT (empty in the presets: the user names it).
    public var model: String
    public var dataSeed: UInt64
    public var demos: Int
    public var ppoPrompts: Int
    public var evalTasks: Int
    public var inDomainTasks: Int
    public var sftEpochs: Int
    public var sftBatchSize: Int
    public var sftLearningRate: Double
    public var sftSeed: UInt64
    /// One SFT run per seed (seeded with it) instead of one shared run.
    public var sftPerSeed: Bool
    public var sftArgs: [String]
    public var ppoSteps: Int
    public var seeds: [UInt64]
    public var placements: [String]
    public var ppoArgs: [String]
    public var daemon: String?
    public var evalMaxNewTokens: Int
    public var evalInDomain: Bool
    public var evalArgs: [String]
    public var threads: Int?
    /// Data scarcity: for each N, SFT on the first N demonstrations and SRPPO (EOS placement, the
    /// first seed) from it; N = demos reuses the first seed's SFT model and the policy its EOS run saves
    /// after `scarcitySteps` (the same steps). Evaluated on the first set only.
    public var scarcityDemos: [Int]
    /// PPO steps of the data-scarcity runs (nil: ppo_steps).
    public var scarcityPPOSteps: Int?
    /// Score references, shuffled references, PT and SFT samples of the held-out demonstrations
    /// with the coherent reward (`srppo reward-sanity`).
    public var rewardSanity: Bool

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case model, demos, seeds, placements, daemon, threads
        case dataSeed = "data_seed", ppoPrompts = "ppo_prompts", evalTasks = "eval_tasks", inDomainTasks = "in_domain_tasks"
        case sftEpochs = "sft_epochs", sftBatchSize = "sft_batch_size", sftLearningRate = "sft_learning_rate", sftSeed = "sft_seed"
        case sftPerSeed = "sft_per_seed"
        case sftArgs = "sft_args", ppoSteps = "ppo_steps", ppoArgs = "ppo_args", evalMaxNewTokens = "eval_max_new_tokens"
        case evalInDomain = "eval_in_domain", evalArgs = "eval_args"
        case scarcityDemos = "scarcity_demos", scarcityPPOSteps = "scarcity_ppo_steps", rewardSanity = "reward_sanity"
    }

    /// The settings a layer may leave out (and a pipeline.json written before they existed lacks).
    public static let defaults: [String: Any] = [
        "sft_per_seed": false, "sft_args": [String](), "ppo_args": [String](), "eval_in_domain": false, "eval_args": [String](),
        "scarcity_demos": [Int](), "reward_sanity": false,
    ]

    /// PPO steps of each data-scarcity run.
    public var scarcitySteps: Int { scarcityPPOSteps ?? ppoSteps }

    /// Sized for about 20 minutes on an idle 2-core machine: 160 demonstrations, one SFT epoch, 10
    /// PPO steps for each reward placement with one seed, 60 out-of-domain evaluation tasks.
    public static let small = PipelineConfig(
        model: "", dataSeed: 1, demos: 160, ppoPrompts: 128, evalTasks: 60, inDomainTasks: 30, sftEpochs: 1, sftBatchSize: 8,
        sftLearningRate: 5e-5, sftSeed: 0, sftPerSeed: false, sftArgs: ["--eval-every", "5"], ppoSteps: 10, seeds: [1],
        placements: ["eos", "tokenwise"], ppoArgs: [], daemon: nil, evalMaxNewTokens: 128, evalInDomain: false, evalArgs: [],
        threads: nil, scarcityDemos: [], scarcityPPOSteps: nil, rewardSanity: false)

    /// The experiment that answers "does SRPPO beat SFT?", budgeted at 150 minutes on 2 cores
    /// (README: what it took): three seeds, each with its own SFT (2 epochs on 160 demonstrations),
    /// 50 PPO steps of 16 responses per placement and seed (one PPO epoch per step: OpenRLHF's
    /// default, and what fits; prompts shared in every forward), 200 out-of-domain and 100 in-domain
    /// tasks, the reward sanity check, and data scarcity at 40, 80 and 160 demonstrations (seed 1,
    /// 15 PPO steps each).
    public static let medium: PipelineConfig = {
        var c = small
        c.ppoPrompts = 256
        c.evalTasks = 200
        c.inDomainTasks = 100
        c.sftEpochs = 2
        c.sftArgs = ["--eval-every", "10"]
        c.ppoSteps = 50
        // Sampling decodes a step's 16 responses as one batch: the same tokens as two batches of 8
        // (decoding is batch-invariant), 0.7 s less per step.
        c.ppoArgs = ["--epochs", "1", "--share-prefixes", "--generate-batch", "16"]
        c.seeds = [1, 2, 3]
        c.sftPerSeed = true
        c.evalInDomain = true
        c.evalArgs = ["--batch-size", "16"]
        c.scarcityDemos = [40, 80, 160]
        c.scarcityPPOSteps = 15
        c.rewardSanity = true
        return c
    }()

    /// A larger run: the generator's default sizes, two SFT epochs, 30 PPO steps per run, three
    /// seeds (each with its own SFT run) for each placement, both evaluation sets. Several hours here.
    public static let large: PipelineConfig = {
        var c = small
        c.demos = TaskSizes.small.demonstrations
        c.ppoPrompts = TaskSizes.small.ppoPrompts
        c.evalTasks = TaskSizes.small.evalOutOfDomain
        c.inDomainTasks = TaskSizes.small.evalInDomain
        c.sftEpochs = 2
        c.sftArgs = ["--eval-every", "10"]
        c.ppoSteps = 30
        c.seeds = [1, 2, 3]
        c.sftPerSeed = true
        c.evalMaxNewTokens = 192
        c.evalInDomain = true
        return c
    }()

    public static let presets: [String: PipelineConfig] = ["small": small, "medium": medium, "large": large]

    /// The preset's settings, replaced by those of `file` (a JSON object with pipeline.json's keys)
    /// and then by `overrides` (the same keys, from flags); checked with `validate`.
    public static func layered(preset name: String, file: String?, overrides: [String: Any]) throws -> PipelineConfig {
        guard let preset = presets[name] else {
            throw PipelineError("--preset must be small, medium or large, not '\(name)'")
        }
        var layers = [try preset.jsonObject()]
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw PipelineError("\(file): cannot read file") }
            guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw PipelineError("\(file): not a valid pipeline config: expected a JSON object")
            }
            layers.append(object)
        }
        layers.append(overrides)
        let config = try decode(layers: layers, source: file ?? "the pipeline settings")
        try config.validate()
        return config
    }

    /// Settings from JSON objects, later keys replacing earlier ones, over `defaults`. Unknown keys
    /// are refused (a misspelt setting would otherwise be ignored).
    public static func decode(layers: [[String: Any]], source: String) throws -> PipelineConfig {
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for layer in layers {
            if let problem = JSONLayers.unknownKey(in: layer, known: known, noun: "pipeline setting") {
                throw PipelineError("\(source): \(problem)")
            }
        }
        do {
            let merged = JSONLayers.merged([defaults] + layers)
            return try JSONDecoder().decode(PipelineConfig.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.keyNotFound(key, _) {
            throw PipelineError("pipeline setting \"\(key.stringValue)\" is missing")
        } catch let error as DecodingError {
            throw PipelineError("\(source): not a valid pipeline config: \(DecodingProblem(error).description)")
        }
    }

    func jsonObject() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as! [String: Any]
    }

    /// Refuses settings the stages cannot run with, naming the setting.
    public func validate() throws {
        guard !model.isEmpty else { throw PipelineError("the pipeline needs the pretrained model: --model PATH (or \"model\" in --config)") }
        for (key, value) in [("demos", demos), ("eval_tasks", evalTasks), ("in_domain_tasks", inDomainTasks), ("sft_epochs", sftEpochs),
                             ("sft_batch_size", sftBatchSize), ("eval_max_new_tokens", evalMaxNewTokens)] where value < 1 {
            throw PipelineError("pipeline setting \"\(key)\" must be at least 1")
        }
        if ppoSteps < 0 || ppoPrompts < 0 { throw PipelineError("ppo_steps and ppo_prompts must not be negative") }
        if ppoSteps > 0 && (seeds.isEmpty || placements.isEmpty) {
            throw PipelineError("PPO needs at least one seed and one placement (or ppo_steps 0 to skip PPO)")
        }
        for p in placements where !["eos", "tokenwise", "length-normalized"].contains(p) {
            throw PipelineError("unknown reward placement '\(p)' (use eos, tokenwise or length-normalized)")
        }
        if sftPerSeed && seeds.isEmpty { throw PipelineError("sft_per_seed needs at least one seed") }
        if sftPerSeed && daemon != nil && ppoSteps > 0 {
            throw PipelineError("sft_per_seed trains one SFT model per seed, but a daemon serves one: leave out --daemon or sft_per_seed")
        }
        if Set(seeds).count != seeds.count || Set(placements).count != placements.count {
            throw PipelineError("seeds and placements must not repeat")
        }
        for n in scarcityDemos where n < 1 || n > demos {
            throw PipelineError("scarcity_demos: \(n) must be between 1 and demos (\(demos))")
        }
        if Set(scarcityDemos).count != scarcityDemos.count { throw PipelineError("scarcity_demos must not repeat") }
        if !scarcityDemos.isEmpty && scarcitySteps < 1 { throw PipelineError("scarcity_ppo_steps must be at least 1") }
        if !scarcityDemos.isEmpty && (ppoSteps == 0 || seeds.isEmpty || daemon != nil) {
            throw PipelineError("scarcity_demos needs PPO runs (ppo_steps > 0, a seed) scored in-process (no daemon: it serves one SFT)")
        }
    }
}
