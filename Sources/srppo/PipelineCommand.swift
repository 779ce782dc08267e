import ArgumentParser
import Evaluation
import Foundation
import ModelFiles

struct PipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "The whole method: data → SFT → PPO (EOS and token-wise reward, several seeds) → eval of PT, SFT, SRPPO → report.",
        discussion: """
        Every stage is the documented command, run as a child process of this one, so each stage \\
        leaves the same run folder it would leave by hand and a stopped pipeline continues where it \\
        stopped (same command again: finished stages are skipped, SFT and PPO runs resume from \\
        their newest checkpoint). Into --out:

          data/                 srppo data generate (+ chat-format copies: sft_chat.jsonl,
                                ppo_prompts_chat.jsonl, heldout_chat.jsonl)
          sft/                  srppo sft --model PT --data data/sft_chat.jsonl --seed SFT_SEED
                                (with --sft-per-seed: sft-seedS/ with --seed S, one per seed,
                                and seed S's PPO runs start from sft-seedS/model)
          ppo-P-seedS/          srppo ppo --pt PT --sft sft/model --prompts data/sft_chat.jsonl
                                --prompts data/ppo_prompts_chat.jsonl --out … --steps N --seed S
                                --reward-placement P        (P in placements, S in seeds)
          eval/LABEL.json       srppo eval --model M --set data/eval_ood.jsonl [--set data/eval_in_domain.jsonl]
                                --nll data/heldout_chat.jsonl   (LABEL: pt, sft or sft-seedS, srppo-P-seedS)
          report.html           srppo report
          pipeline.json         the resolved settings; stages.jsonl: seconds per stage; pipeline.log

        Settings: --preset (small: about 20 minutes on 2 cores with one seed; large: several hours), \\
        then the JSON --config file (keys as in pipeline.json), then flags. sft_args, ppo_args and \\
        eval_args in the config pass extra flags to those stages.

        Examples:
          srppo pipeline --model SmolLM2-135M-Instruct.Q4_1.gguf --out runs/small
          srppo pipeline --model SmolLM2-135M-Instruct.Q4_1.gguf --out runs/large --preset large
          srppo pipeline --out runs/x --config my-pipeline.json --seeds 1,2,3 --placements eos
        """
    )

    @Option(help: "Pretrained model PT (GGUF file, safetensors file or Hugging Face folder).") var model: String?
    @Option(help: "Run folder.") var out: String
    @Option(help: "small (about 20 minutes here with one seed) or large (several hours).") var preset = "small"
    @Option(help: "JSON file of settings (keys as in pipeline.json); flags override it.") var config: String?
    @Option(help: "PPO seeds, comma-separated (one PPO run per seed and placement).") var seeds: String?
    @Flag(help: "One SFT run per seed (SFT seeded with it) instead of one shared SFT run; seed S's PPO runs start from SFT seed S.")
    var sftPerSeed = false
    @Option(help: "Reward placements, comma-separated from eos, tokenwise, length-normalized.") var placements: String?
    @Option(help: "PPO steps per run.") var ppoSteps: Int?
    @Option(help: "SFT epochs.") var sftEpochs: Int?
    @Option(help: "Demonstrations to generate.") var demos: Int?
    @Option(help: "Extra PPO prompts (no demonstrations) to generate.") var ppoPrompts: Int?
    @Option(help: "Out-of-domain evaluation tasks.") var evalTasks: Int?
    @Option(help: "Most new tokens per evaluation response.") var evalMaxNewTokens: Int?
    @Option(help: "Score PPO rewards through the srppod on this socket (it must serve PT and this run's sft/model).") var daemon: String?
    @Option(help: "Worker threads for every stage.") var threads: Int?
    @Option(help: "Executable that runs the stages' subcommands (default: this srppo).") var srppo: String?
    @Flag(help: "Print the stages' commands without running them.") var dryRun = false

    func run() throws {
        try CLI.orExit {
            var settings = try PipelineConfig.preset(preset)
            if let config { settings = settings.overriding(try PipelineConfig.load(config)) }
            settings = settings.overriding(try flagSettings())
            let resolved = try settings.resolved()
            let pipeline = Pipeline(out: out, config: resolved, settings: settings,
                                    executable: srppo ?? Pipeline.ownExecutable(), dryRun: dryRun)
            try pipeline.run()
        }
    }

    private func flagSettings() throws -> PipelineConfig {
        var c = PipelineConfig()
        c.model = model
        c.seeds = try seeds.map { text in
            try text.split(separator: ",").map { part in
                guard let seed = UInt64(part.trimmingCharacters(in: .whitespaces)) else {
                    throw CLI.Failure(description: "--seeds needs comma-separated whole numbers, got \"\(text)\"")
                }
                return seed
            }
        }
        c.placements = placements.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        c.ppoSteps = ppoSteps
        if sftPerSeed { c.sftPerSeed = true }
        c.sftEpochs = sftEpochs
        c.demos = demos
        c.ppoPrompts = ppoPrompts
        c.evalTasks = evalTasks
        c.evalMaxNewTokens = evalMaxNewTokens
        c.daemon = daemon
        c.threads = threads
        return c
    }
}

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

    enum CodingKeys: String, CodingKey {
        case model, demos, seeds, placements, daemon, threads
        case dataSeed = "data_seed", ppoPrompts = "ppo_prompts", evalTasks = "eval_tasks", inDomainTasks = "in_domain_tasks"
        case sftEpochs = "sft_epochs", sftBatchSize = "sft_batch_size", sftLearningRate = "sft_learning_rate", sftSeed = "sft_seed"
        case sftPerSeed = "sft_per_seed"
        case sftArgs = "sft_args", ppoSteps = "ppo_steps", ppoArgs = "ppo_args", evalMaxNewTokens = "eval_max_new_tokens"
        case evalInDomain = "eval_in_domain", evalArgs = "eval_args"
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
        case "large": return large
        default: throw CLI.Failure(description: "--preset must be small or large, not '\(name)'")
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
            evalInDomain: evalInDomain ?? false, evalArgs: evalArgs ?? [], threads: threads)
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
        return r
    }
}

/// Runs the stages as child processes of the srppo executable.
struct Pipeline {
    let out: String
    let config: PipelineConfig.Resolved
    let settings: PipelineConfig
    let executable: String
    let dryRun: Bool

    static func ownExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    func path(_ parts: String...) -> String { ([out] + parts).joined(separator: "/") }
    func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }

    /// The SFT runs: (seed, folder, eval label). One shared run seeded with sft_seed, or with
    /// sft_per_seed one per seed, so that the spread over seeds covers SFT as well as PPO.
    var sftRuns: [(seed: UInt64, folder: String, label: String)] {
        guard config.sftPerSeed else { return [(config.sftSeed, path("sft"), "sft")] }
        return config.seeds.map { s in (s, path(sftLabel(forSeed: s)), sftLabel(forSeed: s)) }
    }

    /// The SFT run (folder name and eval label) that seed `seed`'s PPO runs start from.
    func sftLabel(forSeed seed: UInt64) -> String {
        config.sftPerSeed ? "sft-seed\(seed)" : "sft"
    }

    /// The PPO runs: (placement, seed, folder, eval label).
    var ppoRuns: [(placement: String, seed: UInt64, folder: String, label: String)] {
        guard config.ppoSteps > 0 else { return [] }
        return config.placements.flatMap { p in config.seeds.map { s in (p, s, path("ppo-\(p)-seed\(s)"), "srppo-\(p)-seed\(s)") } }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try saveSettings()
        let threadArgs = config.threads.map { ["--threads", "\($0)"] } ?? []
        let data = path("data")

        // 1. Data.
        if !exists(data + "/manifest.json") {
            try stage("data", ["data", "generate", "--out", data, "--seed", "\(config.dataSeed)", "--demos", "\(config.demos)",
                               "--ppo-prompts", "\(config.ppoPrompts)", "--eval", "\(config.evalTasks)", "--held-out", "\(config.inDomainTasks)"])
        }
        if !dryRun { try writeChatFiles(data) }

        // 2. SFT.
        for run in sftRuns where !exists(run.folder + "/model/config.json") {
            var args = ["sft", "--out", run.folder]
            if hasCheckpoints(run.folder) {
                args.append("--resume")
            } else {
                args += ["--model", config.model, "--data", data + "/sft_chat.jsonl", "--epochs", "\(config.sftEpochs)",
                         "--batch-size", "\(config.sftBatchSize)", "--lr", "\(config.sftLearningRate)", "--seed", "\(run.seed)"] + config.sftArgs
            }
            try stage(run.label, args + threadArgs)
        }

        // 3. PPO: one run per placement and seed.
        for run in ppoRuns where !exists(run.folder + "/model/config.json") {
            var args = ["ppo", "--out", run.folder]
            if hasCheckpoints(run.folder) {
                args.append("--resume")
            } else {
                args += config.daemon.map { ["--daemon", $0] } ?? ["--pt", config.model]
                args += ["--sft", path(sftLabel(forSeed: run.seed), "model"), "--prompts", data + "/sft_chat.jsonl", "--prompts", data + "/ppo_prompts_chat.jsonl",
                         "--steps", "\(config.ppoSteps)", "--seed", "\(run.seed)", "--reward-placement", run.placement] + config.ppoArgs
            }
            try stage("ppo-\(run.placement)-seed\(run.seed)", args + threadArgs)
        }

        // 4. Evaluation of every model on the same sets.
        let models = [("pt", config.model)] + sftRuns.map { ($0.label, $0.folder + "/model") } + ppoRuns.map { ($0.label, $0.folder + "/model") }
        let evalFolder = path("eval")
        if !dryRun { try FileManager.default.createDirectory(atPath: evalFolder, withIntermediateDirectories: true) }
        var sets = ["--set", data + "/eval_ood.jsonl"]
        if config.evalInDomain { sets += ["--set", data + "/eval_in_domain.jsonl"] }
        for (label, model) in models where !exists(evalFolder + "/\(label).json") {
            try stage("eval-\(label)", ["eval", "--model", model] + sets + ["--nll", data + "/heldout_chat.jsonl",
                      "--max-new-tokens", "\(config.evalMaxNewTokens)", "--output", evalFolder + "/\(label).json",
                      "--details", evalFolder + "/\(label).rows.jsonl"] + config.evalArgs + threadArgs)
        }

        // 5. Report.
        try stage("report", ["report", out])
    }

    /// pipeline.json holds the settings; a folder started with other settings is refused (its
    /// stages would mix two configurations).
    private func saveSettings() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(settings)
        data.append(0x0A)
        let file = path("pipeline.json")
        if let saved = FileManager.default.contents(atPath: file) {
            if let previous = try? JSONDecoder().decode(PipelineConfig.self, from: saved), previous == settings { return }
            throw CLI.Failure(description: "\(out) was started with other settings (\(file)): use another --out, or the same settings to continue it")
        }
        if !dryRun { try AtomicFile.write(data, to: file) }
    }

    private func hasCheckpoints(_ folder: String) -> Bool {
        !((try? FileManager.default.contentsOfDirectory(atPath: folder + "/checkpoints")) ?? []).isEmpty
    }

    /// Runs `srppo ARGS`, echoing the command; logs it and its duration.
    private func stage(_ name: String, _ args: [String]) throws {
        let line = ([executable] + args).map(Self.quote).joined(separator: " ")
        FileHandle.standardError.write(Data("pipeline: \(name): \(line)\n".utf8))
        if dryRun { return }
        try append("pipeline.log", "\(ISO8601DateFormatter().string(from: Date())) \(name): \(line)\n")
        let started = Date()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        try process.run()
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(started)
        let status = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
        let record: [String: Any] = ["stage": name, "seconds": (seconds * 10).rounded() / 10, "exit": Int(status), "command": line]
        try append("stages.jsonl", String(decoding: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]), as: UTF8.self) + "\n")
        guard status == 0 else {
            throw CLI.Failure(description: "pipeline stage \(name) failed (exit \(status)); run the same pipeline command again to continue: \(line)")
        }
        FileHandle.standardError.write(Data(String(format: "pipeline: %@ done in %.1f s\n", name, seconds).utf8))
    }

    private func append(_ name: String, _ text: String) throws {
        let file = path(name)
        if !exists(file) { FileManager.default.createFile(atPath: file, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: file) else { throw CLI.Failure(description: "\(file): cannot write") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
    }

    /// The generated files hold plain {"prompt","response"} rows; SFT, PPO and evaluation all go
    /// through the model's chat template, so the training data is written as chat too:
    /// sft_chat.jsonl (demonstrations), ppo_prompts_chat.jsonl (prompts), heldout_chat.jsonl (the
    /// in-domain evaluation tasks with their reference responses: demonstrations never trained on).
    private func writeChatFiles(_ data: String) throws {
        func convert(_ source: String, _ target: String, responseField: String?) throws {
            guard !exists(data + "/" + target) else { return }
            var output = Data()
            for line in try JSONLines.read(data + "/" + source) {
                guard let row = try JSONSerialization.jsonObject(with: line.data) as? [String: Any], let prompt = row["prompt"] as? String else {
                    throw line.error("expected a row with a \"prompt\"")
                }
                var messages: [[String: String]] = [["role": "user", "content": prompt]]
                if let responseField {
                    guard let response = row[responseField] as? String else { throw line.error("missing \"\(responseField)\"") }
                    messages.append(["role": "assistant", "content": response])
                }
                output.append(try JSONSerialization.data(withJSONObject: ["messages": messages], options: [.sortedKeys, .withoutEscapingSlashes]))
                output.append(0x0A)
            }
            try AtomicFile.write(output, to: data + "/" + target)
        }
        try convert(GeneratedTaskData.demonstrationsFile, "sft_chat.jsonl", responseField: "response")
        try convert(GeneratedTaskData.ppoPromptsFile, "ppo_prompts_chat.jsonl", responseField: nil)
        try convert(GeneratedTaskData.evalInDomainFile, "heldout_chat.jsonl", responseField: "reference")
    }

    static func quote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=,:+".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
