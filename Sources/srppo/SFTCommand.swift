import ArgumentParser
import Foundation
import Tensor
import Training
import Transformer

struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Stage 1: supervised fine-tuning on demonstrations (loss on response tokens only).",
        discussion: """
        Demonstrations are JSONL: {"prompt":"…","response":"…"}, chat {"messages":[…]} (the last
        message is the assistant's response), or pre-tokenized {"prompt_ids":[…],"response_ids":[…]}.
        Text is rendered with the model's chat template; the response ends with the end-of-turn token,
        which is trained too. Every line is checked before training starts.

        The run folder gets run-config.json, heldout.jsonl (the held-out split, as score input), metrics.jsonl, checkpoints/step-N (Hugging Face layout,
        keep-N, written atomically) and, at the end, model/ — the SFT model for `srppo ppo`.
        After a crash or kill, the same command with --resume continues exactly where the newest
        checkpoint left off.

        Example:
          srppo sft --model SmolLM2-135M-Instruct.Q4_1.gguf --data demos.jsonl --out runs/sft
          srppo sft --out runs/sft --resume
        """
    )

    @Option(help: "Pretrained model: GGUF file, safetensors file or Hugging Face folder.")
    var model: String?

    @Option(help: "Demonstrations (JSONL).")
    var data: String?

    @Option(help: "Run folder.")
    var out: String

    @Flag(help: "Continue the run in --out from its newest checkpoint.")
    var resume = false

    @Option(help: "JSON file with settings (the \"sft\" object of a run-config.json); flags override it.")
    var config: String?

    @Option(help: "Epochs over the training demonstrations.") var epochs: Int?
    @Option(help: "Demonstrations per optimizer step.") var batchSize: Int?
    @Option(help: "Demonstrations per forward/backward pass (gradient accumulation below batch size).") var microBatchSize: Int?
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate: Double?
    @Option(help: "Share of steps spent warming up.") var warmupRatio: Double?
    @Option(help: "Decay after warm-up: cosine, linear or constant.") var schedule: String?
    @Option(help: "AdamW decoupled weight decay (matrices only).") var weightDecay: Double?
    @Option(help: "Global gradient-norm clip (0: off).") var maxGradNorm: Double?
    @Option(help: "Share of demonstrations held out for eval loss.") var evalFraction: Double?
    @Option(help: "Evaluate every N steps.") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps.") var checkpointEvery: Int?
    @Option(help: "Checkpoints to keep.") var keep: Int?
    @Option(help: "Seed for the split, data order and LoRA init.") var seed: UInt64?
    @Option(help: "Train LoRA adapters of this rank instead of all weights.") var loraRank: Int?
    @Option(help: "LoRA alpha (default: 2 × rank).") var loraAlpha: Double?
    @Option(help: "LoRA target projections, comma-separated from q,k,v,o,gate,up,down.") var loraTargets: String?
    @Flag(help: "Recompute activations in the backward (less memory, ~1/3 more compute).") var recompute = false
    @Option(help: "Stop after this many steps (the run can be resumed later).") var maxSteps: Int?
    @Option(help: "Worker threads (default: all cores).") var threads: Int?

    /// What run-config.json holds for an SFT run.
    struct RunConfig: Codable {
        var command = "sft"
        var model: String
        var data: String
        var sft: SFTConfig
    }

    func run() throws {
        if let threads { Parallel.threads = threads }
        try CLI.ranks { ranks in
            let folder = try RunFolder(path: out)
            let runConfig = try resolveConfig(folder)
            let loaded = try ModelLoader.load(path: runConfig.model)
            let encoder = try TextEncoding.encoder(for: loaded)
            let examples = try DataLoader.demonstrations(
                path: runConfig.data, encoder: encoder,
                limits: .init(vocabularySize: loaded.model.config.vocabSize, maxLength: loaded.model.config.maxPositions))
            let trainer = try SFTTrainer(model: loaded.model, examples: examples, config: runConfig.sft, run: folder)
            trainer.writeExtraFiles = { try TextEncoding.writeTokenizerFiles(for: loaded, to: $0) }
            trainer.collective = ranks
            if resume {
                let step = try trainer.resume()
                FileHandle.standardError.write(Data("sft: resuming \(out) at step \(step)/\(trainer.totalSteps)\n".utf8))
            } else if ranks.isLeader {
                try folder.saveConfig(runConfig)
                try Self.writeHeldOut(trainer.heldOut, to: folder.path + "/heldout.jsonl")
                FileHandle.standardError.write(Data(
                    "sft: \(trainer.train.count) training and \(trainer.heldOut.count) held-out demonstrations, \(trainer.totalSteps) steps\n".utf8))
            }
            try trainer.run(maxSteps: maxSteps)
            if trainer.step == trainer.totalSteps, ranks.isLeader {
                try folder.writeFinalModel { try TextEncoding.saveModel(trainer.model, tokenizerOf: loaded, to: $0) }
                FileHandle.standardError.write(Data("sft: done; model in \(out)/model\n".utf8))
            }
        }
    }

    /// A new run takes --model, --data and the flags; a resumed run takes its saved config (flags
    /// that change the run are refused, since the trajectory could no longer continue exactly).
    private func resolveConfig(_ folder: RunFolder) throws -> RunConfig {
        if resume {
            let saved = try folder.loadConfig(RunConfig.self)
            if model != nil || data != nil || config != nil || settingsGiven {
                throw CLI.Failure(description: "--resume continues \(out) with its saved settings: leave out --model, --data and training flags")
            }
            return saved
        }
        guard let model, let data else { throw CLI.Failure(description: "a new run needs --model and --data (or --resume)") }
        if !folder.checkpoints().isEmpty {
            throw CLI.Failure(description: "\(out) already has checkpoints: use --resume to continue it, or another --out")
        }
        var sft = SFTConfig()
        if let config {
            guard let contents = FileManager.default.contents(atPath: config) else { throw CLI.Failure(description: "\(config): cannot read file") }
            do { sft = try JSONDecoder().decode(SFTConfig.self, from: contents) } catch {
                throw CLI.Failure(description: "\(config): not a valid SFT config: \(error)")
            }
        }
        if let epochs { sft.epochs = epochs }
        if let batchSize { sft.batchSize = batchSize }
        sft.microBatchSize = microBatchSize ?? min(sft.microBatchSize, sft.batchSize)
        if let learningRate { sft.learningRate = learningRate }
        if let warmupRatio { sft.warmupRatio = warmupRatio }
        if let schedule {
            guard let decay = LearningRateSchedule.Decay(rawValue: schedule) else {
                throw CLI.Failure(description: "--schedule must be cosine, linear or constant, not '\(schedule)'")
            }
            sft.decay = decay
        }
        if let weightDecay { sft.optimizer.weightDecay = weightDecay }
        if let maxGradNorm { sft.maxGradientNorm = maxGradNorm }
        if let evalFraction { sft.evalFraction = evalFraction }
        if let evalEvery { sft.evalEvery = evalEvery }
        if let checkpointEvery { sft.checkpointEvery = checkpointEvery }
        if let keep { sft.keepCheckpoints = keep }
        if let seed { sft.seed = seed }
        if recompute { sft.recompute = true }
        if let loraRank { sft.lora = try LoRAOptions.config(rank: loraRank, alpha: loraAlpha, targets: loraTargets) }
        for (name, value) in [("--epochs", sft.epochs), ("--batch-size", sft.batchSize), ("--micro-batch-size", sft.microBatchSize),
                              ("--eval-every", sft.evalEvery), ("--checkpoint-every", sft.checkpointEvery), ("--keep", sft.keepCheckpoints)]
        where value < 1 {
            throw CLI.Failure(description: "\(name) must be at least 1")
        }
        guard sft.learningRate > 0 else { throw CLI.Failure(description: "--lr must be positive") }
        guard (0..<1).contains(sft.evalFraction) else { throw CLI.Failure(description: "--eval-fraction must be in [0, 1)") }
        return RunConfig(model: model, data: data, sft: sft)
    }

    private var settingsGiven: Bool {
        [epochs, batchSize, microBatchSize, evalEvery, checkpointEvery, keep, loraRank].contains { $0 != nil }
            || [learningRate, warmupRatio, weightDecay, maxGradNorm, evalFraction, loraAlpha].contains { $0 != nil }
            || schedule != nil || seed != nil || loraTargets != nil || recompute
    }
}

extension SFTCommand {
    /// The held-out demonstrations as `srppo score` input ({"source","prompt_ids","response_ids"}
    /// per line): the eval loss is their mean negative log-prob per response token.
    static func writeHeldOut(_ examples: [TokenizedExample], to path: String) throws {
        var text = ""
        for example in examples {
            let object: [String: Any] = ["source": example.source, "prompt_ids": example.prompt.map(Int.init),
                                         "response_ids": example.response.map(Int.init)]
            text += String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Parsing of the --lora-* flags shared by sft and ppo.
enum LoRAOptions {
    static func config(rank: Int, alpha: Double?, targets: String?) throws -> LoRAConfig {
        guard rank >= 1 else { throw CLI.Failure(description: "--lora-rank must be at least 1") }
        var list = LoRAConfig.Target.allCases
        if let targets {
            list = try targets.split(separator: ",").map { name in
                guard let t = LoRAConfig.Target(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw CLI.Failure(description: "--lora-targets: unknown projection '\(name)' (use q,k,v,o,gate,up,down)")
                }
                return t
            }
        }
        return LoRAConfig(rank: rank, alpha: alpha ?? Double(2 * rank), targets: list)
    }
}
