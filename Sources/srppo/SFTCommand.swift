import ArgumentParser
import Foundation
import Compute
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

    @Option(help: "JSON file with settings: keys of the \"sft\" object of a run-config.json, only those to change; flags override it.")
    var config: String?

    @OptionGroup(title: "SFT settings (saved with the run)") var settings: SFTOptions
    @Option(help: "Stop after this many steps (the run can be resumed later).") var maxSteps: Int?
    @OptionGroup var threading: ThreadOptions

    /// What run-config.json holds for an SFT run.
    struct RunConfig: Codable {
        var command = "sft"
        var model: String
        var data: String
        var sft: SFTConfig
    }

    func run() throws {
        threading.apply()
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
                try folder.writeScoreInput(trainer.heldOut, name: "heldout.jsonl")
                FileHandle.standardError.write(Data(
                    "sft: \(trainer.train.count) training and \(trainer.heldOut.count) held-out demonstrations, \(trainer.totalSteps) steps\n".utf8))
            }
            try trainer.run(maxSteps: maxSteps)
            if trainer.step == trainer.totalSteps, ranks.isLeader {
                try folder.writeModel { try TextEncoding.saveModel(trainer.model, tokenizerOf: loaded, to: $0) }
                FileHandle.standardError.write(Data("sft: done; model in \(out)/model\n".utf8))
            }
        }
    }

    /// A new run takes --model, --data and the flags; a resumed run takes its saved config (flags
    /// that change the run are refused, since the trajectory could no longer continue exactly).
    private func resolveConfig(_ folder: RunFolder) throws -> RunConfig {
        if resume {
            let saved = try folder.loadConfig(RunConfig.self, over: RunConfig(model: "", data: "", sft: SFTConfig()))
            if model != nil || data != nil || config != nil || settings.given {
                throw CLI.Failure(description: "--resume continues \(out) with its saved settings: leave out --model, --data and training flags")
            }
            return saved
        }
        guard let model, let data else { throw CLI.Failure(description: "a new run needs --model and --data (or --resume)") }
        try folder.requireNoCheckpoints()
        var sft = try config.map { try RunFolder.settings(SFTConfig.self, file: $0, kind: "SFT", over: SFTConfig()) } ?? SFTConfig()
        try settings.apply(to: &sft)
        return RunConfig(model: model, data: data, sft: sft)
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
