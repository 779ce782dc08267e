import Evaluation
import Foundation

/// Pipeline settings; every field optional so that preset, file and flags layer. `resolved()`
/// checks that everything needed is there.
struct PipelineConfig: Codable, Equatable {
    var model: String?
    var dataSeed: UInt64?
    var demos: Int?
    var ppoPrompts: Int?
    var evalTasks: Int?
    var inDomainTasks: Int?
    var sftEpochs: Int?
    var sftBatchSize: Int?
    var sftLearningRate: Double?
    var sftSeed: UInt64?
    var sftPerSeed: Bool?
    var sftArgs: [String]?
    var ppoSteps: Int?
    var seeds: [UInt64]?
    var placements: [String]?
    var ppoArgs: [String]?
    var daemon: String?
    var evalMaxNewTokens: Int?
    var evalInDomain: Bool?
    var evalArgs: [String]?
    var threads: Int?
    /// Data scarcity: for each N, SFT on the first N demonstrations and SRPPO (EOS placement, the
    /// first seed) from it; N = demos reuses the first seed's SFT. Evaluated on the first set only.
    var scarcityDemos: [Int]?
    /// PPO steps of the data-scarcity runs (default: ppo_steps).
    var scarcityPPOSteps: Int?
    /// Score references, shuffled references, PT and SFT samples of the held-out demonstrations
    /// with the coherent reward (`srppo reward-sanity`).
    var rewardSanity: Bool?

    enum CodingKeys: String, CodingKey {
        case model, demos, seeds, placements, daemon, threads
        case dataSeed = "data_seed", ppoPrompts = "ppo_prompts", evalTasks = "eval_tasks", inDomainTasks = "in_domain_tasks"
        case sftEpochs = "sft_epochs", sftBatchSize = "sft_batch_size", sftLearningRate = "sft_learning_rate", sftSeed = "sft_seed"
        case sftPerSeed = "sft_per_seed"
        case sftArgs = "sft_args", ppoSteps = "ppo_steps", ppoArgs = "ppo_args", evalMaxNewTokens = "eval_max_new_tokens"
        case evalInDomain = "eval_in_domain", evalArgs = "eval_args"
        case scarcityDemos = "scarcity_demos", scarcityPPOSteps = "scarcity_ppo_steps", rewardSanity = "reward_sanity"
    }

    /// Sized for about 20 minutes on an idle 2-core machine (an estimate: SFT and evaluation were
    /// measured, PPO not yet): 160 demonstrations, one SFT epoch, 10 PPO steps for each reward
    /// placement with one seed, 60 out-of-domain evaluation tasks.
    static let small: PipelineConfig = {
        var c = PipelineConfig()
        c.dataSeed = 1
        c.demos = 160
        c.ppoPrompts = 128
        c.evalTasks = 60
        c.inDomainTasks = 30
        c.sftEpochs = 1
        c.sftBatchSize = 8
        c.sftLearningRate = 5e-5
        c.sftSeed = 0
        c.sftArgs = ["--eval-every", "5"]
        c.ppoSteps = 10
        c.seeds = [1]
        c.placements = ["eos", "tokenwise"]
        c.ppoArgs = []
        c.evalMaxNewTokens = 128
        c.evalInDomain = false
        c.evalArgs = []
        return c
    }()

    /// The experiment that answers "does SRPPO beat SFT?", budgeted at about 150 minutes on 2 cores
    /// (README: the estimate and what it rests on): three seeds, each with its own SFT (2 epochs on 160
    /// demonstrations), 50 PPO steps of 16 responses per placement and seed (one PPO epoch per step:
    /// OpenRLHF's default, and what fits; scoring with shared prompts), 200 out-of-domain and 100
    /// in-domain tasks, the reward sanity check, and data scarcity at 40, 80 and 160 demonstrations
    /// (seed 1, 15 PPO steps each).
    static let medium: PipelineConfig = {
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
    static let large: PipelineConfig = {
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

    static func preset(_ name: String) throws -> PipelineConfig {
        switch name {
        case "small": return small
        case "medium": return medium
        case "large": return large
        default: throw CLI.Failure(description: "--preset must be small, medium or large, not '\(name)'")
        }
    }

    static func load(_ path: String) throws -> PipelineConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLI.Failure(description: "\(path): cannot read file") }
        do { return try JSONDecoder().decode(PipelineConfig.self, from: data) } catch {
            throw CLI.Failure(description: "\(path): not a valid pipeline config: \(error)")
        }
    }

    /// `self` with every field that `other` sets replaced.
    func overriding(_ other: PipelineConfig) -> PipelineConfig {
        var c = self
        c.model = other.model ?? model
        c.dataSeed = other.dataSeed ?? dataSeed
        c.demos = other.demos ?? demos
        c.ppoPrompts = other.ppoPrompts ?? ppoPrompts
        c.evalTasks = other.evalTasks ?? evalTasks
        c.inDomainTasks = other.inDomainTasks ?? inDomainTasks
        c.sftEpochs = other.sftEpochs ?? sftEpochs
        c.sftBatchSize = other.sftBatchSize ?? sftBatchSize
        c.sftLearningRate = other.sftLearningRate ?? sftLearningRate
        c.sftSeed = other.sftSeed ?? sftSeed
        c.sftPerSeed = other.sftPerSeed ?? sftPerSeed
        c.sftArgs = other.sftArgs ?? sftArgs
        c.ppoSteps = other.ppoSteps ?? ppoSteps
        c.seeds = other.seeds ?? seeds
        c.placements = other.placements ?? placements
        c.ppoArgs = other.ppoArgs ?? ppoArgs
        c.daemon = other.daemon ?? daemon
        c.evalMaxNewTokens = other.evalMaxNewTokens ?? evalMaxNewTokens
        c.evalInDomain = other.evalInDomain ?? evalInDomain
        c.evalArgs = other.evalArgs ?? evalArgs
        c.threads = other.threads ?? threads
        c.scarcityDemos = other.scarcityDemos ?? scarcityDemos
        c.scarcityPPOSteps = other.scarcityPPOSteps ?? scarcityPPOSteps
        c.rewardSanity = other.rewardSanity ?? rewardSanity
        return c
    }

    struct Resolved {
        var model: String
        var dataSeed: UInt64
        var demos, ppoPrompts, evalTasks, inDomainTasks: Int
        var sftEpochs, sftBatchSize: Int
        var sftLearningRate: Double
        var sftSeed: UInt64
        var sftPerSeed: Bool
        var sftArgs: [String]
        var ppoSteps: Int
        var seeds: [UInt64]
        var placements: [String]
        var ppoArgs: [String]
        var daemon: String?
        var evalMaxNewTokens: Int
        var evalInDomain: Bool
        var evalArgs: [String]
        var threads: Int?
        var scarcityDemos: [Int]
        var scarcityPPOSteps: Int
        var rewardSanity: Bool
    }

    func resolved() throws -> Resolved {
        guard let model else { throw CLI.Failure(description: "the pipeline needs the pretrained model: --model PATH (or \"model\" in --config)") }
        func need<T>(_ value: T?, _ key: String) throws -> T {
            guard let value else { throw CLI.Failure(description: "pipeline setting \"\(key)\" is missing") }
            return value
        }
        let r = Resolved(
            model: model, dataSeed: try need(dataSeed, "data_seed"), demos: try need(demos, "demos"),
            ppoPrompts: try need(ppoPrompts, "ppo_prompts"), evalTasks: try need(evalTasks, "eval_tasks"),
            inDomainTasks: try need(inDomainTasks, "in_domain_tasks"), sftEpochs: try need(sftEpochs, "sft_epochs"),
            sftBatchSize: try need(sftBatchSize, "sft_batch_size"), sftLearningRate: try need(sftLearningRate, "sft_learning_rate"),
            sftSeed: try need(sftSeed, "sft_seed"), sftPerSeed: sftPerSeed ?? false, sftArgs: sftArgs ?? [], ppoSteps: try need(ppoSteps, "ppo_steps"),
            seeds: try need(seeds, "seeds"), placements: try need(placements, "placements"), ppoArgs: ppoArgs ?? [],
            daemon: daemon, evalMaxNewTokens: try need(evalMaxNewTokens, "eval_max_new_tokens"),
            evalInDomain: evalInDomain ?? false, evalArgs: evalArgs ?? [], threads: threads,
            scarcityDemos: scarcityDemos ?? [], scarcityPPOSteps: scarcityPPOSteps ?? ppoSteps ?? 0, rewardSanity: rewardSanity ?? false)
        for (key, value) in [("demos", r.demos), ("eval_tasks", r.evalTasks), ("in_domain_tasks", r.inDomainTasks), ("sft_epochs", r.sftEpochs),
                             ("sft_batch_size", r.sftBatchSize), ("eval_max_new_tokens", r.evalMaxNewTokens)] where value < 1 {
            throw CLI.Failure(description: "pipeline setting \"\(key)\" must be at least 1")
        }
        if r.ppoSteps < 0 || r.ppoPrompts < 0 { throw CLI.Failure(description: "ppo_steps and ppo_prompts must not be negative") }
        if r.ppoSteps > 0 && (r.seeds.isEmpty || r.placements.isEmpty) {
            throw CLI.Failure(description: "PPO needs at least one seed and one placement (or ppo_steps 0 to skip PPO)")
        }
        for p in r.placements where !["eos", "tokenwise", "length-normalized"].contains(p) {
            throw CLI.Failure(description: "unknown reward placement '\(p)' (use eos, tokenwise or length-normalized)")
        }
        if r.sftPerSeed && r.seeds.isEmpty { throw CLI.Failure(description: "sft_per_seed needs at least one seed") }
        if r.sftPerSeed && r.daemon != nil && r.ppoSteps > 0 {
            throw CLI.Failure(description: "sft_per_seed trains one SFT model per seed, but a daemon serves one: leave out --daemon or sft_per_seed")
        }
        if Set(r.seeds).count != r.seeds.count || Set(r.placements).count != r.placements.count {
            throw CLI.Failure(description: "seeds and placements must not repeat")
        }
        for n in r.scarcityDemos where n < 1 || n > r.demos {
            throw CLI.Failure(description: "scarcity_demos: \(n) must be between 1 and demos (\(r.demos))")
        }
        if Set(r.scarcityDemos).count != r.scarcityDemos.count { throw CLI.Failure(description: "scarcity_demos must not repeat") }
        if !r.scarcityDemos.isEmpty && r.scarcityPPOSteps < 1 { throw CLI.Failure(description: "scarcity_ppo_steps must be at least 1") }
        if !r.scarcityDemos.isEmpty && (r.ppoSteps == 0 || r.seeds.isEmpty || r.daemon != nil) {
            throw CLI.Failure(description: "scarcity_demos needs PPO runs (ppo_steps > 0, a seed) scored in-process (no daemon: it serves one SFT)")
        }
        return r
    }
}
