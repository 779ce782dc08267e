import Evaluation
import Foundation
import ModelFiles

/// Runs the stages as child processes of the srppo executable.
public struct Pipeline {
    let out: String
    let config: PipelineConfig
    let executable: String
    let dryRun: Bool
    /// Keep a finished run's checkpoints (by default they go once its model is written: they only
    /// serve --resume, and a PPO run's two newest are ~6 GB with SmolLM2).
    var keepCheckpoints = false

    /// A pipeline into `out` running `executable`'s subcommands; `dryRun` prints the stages' commands only.
    public init(out: String, config: PipelineConfig, executable: String, dryRun: Bool = false, keepCheckpoints: Bool = false) {
        self.out = out
        self.config = config
        self.executable = executable
        self.dryRun = dryRun
        self.keepCheckpoints = keepCheckpoints
    }

    /// The running executable's path (the stages run the same build).
    public static func ownExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    func path(_ parts: String...) -> String { ([out] + parts).joined(separator: "/") }
    func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }

    /// An SFT run: its seed, demonstrations file (in data/), folder and eval label.
    struct SFTRun { var seed: UInt64; var demonstrations: String; var folder: String; var label: String }

    /// A PPO run: placement, seed, steps, the SFT folder it starts from, its folder and eval label;
    /// the policy to evaluate (its model/, or a policy another run saves after `steps`: then it
    /// trains nothing itself), and the steps after which it saves its policy for such a run.
    struct PPORun {
        var placement: String; var seed: UInt64; var steps: Int; var sft: String; var folder: String; var label: String
        var policy: String
        var savePolicyAt: [Int] = []
        var trains: Bool { policy == folder + "/model" }
    }

    /// The SFT runs: one shared run seeded with sft_seed, or with sft_per_seed one per seed (so that
    /// the spread over seeds covers SFT as well as PPO); then one per data-scarcity size, on the first
    /// N demonstrations with the first seed (N = demos: the first seed's SFT run, under its own label).
    var sftRuns: [SFTRun] {
        var runs = config.sftPerSeed
            ? config.seeds.map { SFTRun(seed: $0, demonstrations: "sft_chat.jsonl", folder: path(sftLabel(forSeed: $0)), label: sftLabel(forSeed: $0)) }
            : [SFTRun(seed: config.sftSeed, demonstrations: "sft_chat.jsonl", folder: path("sft"), label: "sft")]
        for n in config.scarcityDemos {
            let folder = n == config.demos ? path(sftLabel(forSeed: config.seeds[0])) : path("sft-demos\(n)")
            runs.append(SFTRun(seed: config.seeds[0], demonstrations: Self.scarcityFile(n), folder: folder, label: "sft-demos\(n)"))
        }
        return runs
    }

    static func scarcityFile(_ demos: Int) -> String { "sft_chat_demos\(demos).jsonl" }

    /// The SFT run (folder name and eval label) that seed `seed`'s PPO runs start from.
    func sftLabel(forSeed seed: UInt64) -> String {
        config.sftPerSeed ? "sft-seed\(seed)" : "sft"
    }

    /// The PPO runs: every placement and seed, then per data-scarcity size one run with the EOS
    /// placement (the method's; else the first placement) and the first seed.
    var ppoRuns: [PPORun] {
        guard config.ppoSteps > 0 else { return [] }
        var runs = config.placements.flatMap { p in
            config.seeds.map { s in
                PPORun(placement: p, seed: s, steps: config.ppoSteps, sft: path(sftLabel(forSeed: s)), folder: path("ppo-\(p)-seed\(s)"),
                       label: "srppo-\(p)-seed\(s)", policy: path("ppo-\(p)-seed\(s)", "model"))
            }
        }
        let placement = config.placements.contains("eos") ? "eos" : config.placements[0]
        for sft in sftRuns where sft.label.hasPrefix("sft-demos") {
            let variant = String(sft.label.dropFirst("sft-".count)), steps = config.scarcitySteps
            // A main run from the same SFT model with the same seed and placement takes, bit for bit,
            // the steps this run would take (N = demos): its policy after `steps` is this run's.
            if let main = runs.firstIndex(where: { $0.trains && $0.placement == placement && $0.seed == sft.seed && $0.sft == sft.folder
                                                   && $0.steps >= steps }) {
                runs[main].savePolicyAt.append(steps)
                runs.append(PPORun(placement: placement, seed: sft.seed, steps: steps, sft: sft.folder, folder: runs[main].folder,
                                   label: "srppo-\(placement)-\(variant)", policy: runs[main].folder + "/policy-step-\(steps)"))
                continue
            }
            let folder = path("ppo-\(placement)-\(variant)")
            runs.append(PPORun(placement: placement, seed: sft.seed, steps: steps, sft: sft.folder, folder: folder,
                               label: "srppo-\(placement)-\(variant)", policy: folder + "/model"))
        }
        return runs
    }

    /// Runs every stage not finished yet, in order.
    public func run() throws {
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
        let runs = sftRuns
        for (i, run) in runs.enumerated() where !runs[..<i].contains(where: { $0.folder == run.folder }) && !exists(run.folder + "/model/config.json") {
            var args = ["sft", "--out", run.folder]
            if hasCheckpoints(run.folder) {
                args.append("--resume")
            } else {
                args += ["--model", config.model, "--data", data + "/" + run.demonstrations, "--epochs", "\(config.sftEpochs)",
                         "--batch-size", "\(config.sftBatchSize)", "--lr", "\(config.sftLearningRate)", "--seed", "\(run.seed)"] + config.sftArgs
            }
            try stage(run.label, args + threadArgs)
            try pruneCheckpoints(run.folder)
        }

        // 3. PPO: one run per placement and seed.
        for run in ppoRuns where run.trains && !exists(run.folder + "/model/config.json") {
            var args = ["ppo", "--out", run.folder]
            if hasCheckpoints(run.folder) {
                args.append("--resume")
            } else {
                args += config.daemon.map { ["--daemon", $0] } ?? ["--pt", config.model]
                args += ["--sft", run.sft + "/model", "--prompts", data + "/sft_chat.jsonl", "--prompts", data + "/ppo_prompts_chat.jsonl",
                         "--steps", "\(run.steps)", "--seed", "\(run.seed)", "--reward-placement", run.placement]
                args += run.savePolicyAt.flatMap { ["--save-policy-at", "\($0)"] } + config.ppoArgs
            }
            try stage((run.folder as NSString).lastPathComponent, args + threadArgs)
            try pruneCheckpoints(run.folder)
        }

        // 3b. Does the reward tell the held-out references from other answers?
        if config.rewardSanity && !exists(path("reward_sanity.json")) {
            try stage("reward-sanity", ["reward-sanity", "--pt", config.model, "--sft", sftRuns[0].folder + "/model",
                                        "--data", data + "/heldout_chat.jsonl", "--max-new-tokens", "\(config.evalMaxNewTokens)",
                                        "--output", path("reward_sanity.json")] + threadArgs)
        }

        // 4. Evaluation of every model on the same sets.
        let models = [("pt", config.model)] + sftRuns.map { ($0.label, $0.folder + "/model") } + ppoRuns.map { ($0.label, $0.policy) }
        let evalFolder = path("eval")
        if !dryRun { try FileManager.default.createDirectory(atPath: evalFolder, withIntermediateDirectories: true) }
        var sets = ["--set", data + "/eval_ood.jsonl"]
        if config.evalInDomain { sets += ["--set", data + "/eval_in_domain.jsonl"] }
        for (i, (label, model)) in models.enumerated() where !exists(evalFolder + "/\(label).json") {
            // The same model under another label (the data-scarcity SFT at N = demos): its results.
            if let (earlier, _) = models[..<i].first(where: { $0.1 == model }) {
                try copyEvaluation(from: earlier, to: label, in: evalFolder)
                continue
            }
            // The data-scarcity models answer the out-of-domain set only (their comparison).
            let modelSets = label.contains("-demos") ? Array(sets.prefix(2)) : sets
            try stage("eval-\(label)", ["eval", "--model", model] + modelSets + ["--nll", data + "/heldout_chat.jsonl",
                      "--max-new-tokens", "\(config.evalMaxNewTokens)", "--output", evalFolder + "/\(label).json",
                      "--details", evalFolder + "/\(label).rows.jsonl"] + config.evalArgs + threadArgs)
        }

        // 5. SRPPO against its SFT start, task by task, with bootstrap intervals.
        if !ppoRuns.isEmpty { try stage("compare", ["compare", out]) }

        // 6. Report.
        try stage("report", ["report", out])
    }

    /// Copies the evaluation files of one label to another (the same model evaluated once).
    private func copyEvaluation(from earlier: String, to label: String, in folder: String) throws {
        FileHandle.standardError.write(Data("pipeline: eval-\(label): the model of \(earlier); its evaluation copied\n".utf8))
        if dryRun { return }
        for suffix in [".rows.jsonl", ".json"] {   // the .json last: it marks the evaluation done
            let target = folder + "/" + label + suffix
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: folder + "/" + earlier + suffix, toPath: target)
        }
    }

    /// pipeline.json holds the settings; a folder started with other settings is refused (its
    /// stages would mix two configurations).
    private func saveSettings() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(config)
        data.append(0x0A)
        let file = path("pipeline.json")
        if let saved = FileManager.default.contents(atPath: file) {
            let object = (try? JSONSerialization.jsonObject(with: saved)) as? [String: Any]
            if let object, let previous = try? PipelineConfig.decode(layers: [object], source: file), previous == config { return }
            throw PipelineError("\(out) was started with other settings (\(file)): use another --out, or the same settings to continue it")
        }
        if !dryRun { try AtomicFile.write(data, to: file) }
    }

    private func hasCheckpoints(_ folder: String) -> Bool {
        !((try? FileManager.default.contentsOfDirectory(atPath: folder + "/checkpoints")) ?? []).isEmpty
    }

    /// Deletes a finished run's checkpoints/ (its model/ is what later stages read).
    private func pruneCheckpoints(_ folder: String) throws {
        let checkpoints = folder + "/checkpoints"
        guard !dryRun, !keepCheckpoints, exists(folder + "/model/config.json"), exists(checkpoints) else { return }
        try FileManager.default.removeItem(atPath: checkpoints)
        FileHandle.standardError.write(Data("pipeline: removed \(checkpoints) (the run is finished; --keep-checkpoints keeps them)\n".utf8))
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
            throw PipelineError("pipeline stage \(name) failed (exit \(status)); run the same pipeline command again to continue: \(line)")
        }
        FileHandle.standardError.write(Data(String(format: "pipeline: %@ done in %.1f s\n", name, seconds).utf8))
    }

    private func append(_ name: String, _ text: String) throws {
        let file = path(name)
        if !exists(file) { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: file) else { throw PipelineError("\(file): cannot write") }
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
        // Data scarcity: the first N demonstrations.
        let demonstrations = try String(contentsOfFile: data + "/sft_chat.jsonl", encoding: .utf8).split(separator: "\n")
        for n in config.scarcityDemos where n < config.demos && !exists(data + "/" + Self.scarcityFile(n)) {
            try AtomicFile.write(Data((demonstrations.prefix(n).joined(separator: "\n") + "\n").utf8), to: data + "/" + Self.scarcityFile(n))
        }
    }

    static func quote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=,:+".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
