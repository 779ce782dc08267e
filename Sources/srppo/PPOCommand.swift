import ArgumentParser
import Client
import Foundation
import Compute
import Training
import WireProtocol

struct PPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "Stage 2: PPO with the coherent reward log p_SFT(y|x) − log p_PT(y|x).",
        discussion: """
        Actor and critic start from the SFT model (the critic adds a fresh value head); PT and SFT stay \
        frozen and score every sampled response, in-process by default or through a running srppod \
        (--daemon SOCKET). Prompts come from --prompts files: prompt-only records, and demonstration \
        files too (their responses are ignored). Text and chat records are rendered with the SFT model's \
        tokenizer and chat template (pre-tokenized {"prompt_ids":[…]} works too).

        Several trainers can share one srppod: each names itself to the daemon (--client, default \
        ppo-<run folder>-<pid>) and gets its fair share of the scheduler. With --daemon, actor and \
        critic start from the daemon's SFT weight image, received by descriptor from its image socket \
        (--daemon-images): nothing is loaded from disk. Fully trained networks map it copy-on-write; \
        LoRA networks (--actor-lora-rank, --critic-lora-rank) use it read-only as their base, one \
        physical copy for the daemon and every trainer on the host. --sft is then optional: when given, \
        its content hash must equal the daemon's (the actor must start from the reward's SFT); the \
        tokenizer comes from the daemon's SFT checkpoint. --sft-from-disk loads --sft instead.

        The run folder gets run-config.json, metrics.jsonl (one line per step: reward, KL to SFT and \
        PT, clip fractions, entropy, value loss, explained variance, lengths, EOS and truncation \
        rates, time per phase), checkpoints/step-N (the policy in Hugging Face layout plus everything \
        resuming needs), policy-step-N after step N with --save-policy-at N, and, at the end, model/ — \
        the SRPPO policy. --resume continues after a kill \
        (with --daemon when the run scores through one); it refuses frozen models (in-process or the daemon's) other than those the run started with.

        Example:
          srppo ppo --pt SmolLM2-135M-Instruct.Q4_1.gguf --sft runs/sft/model \\
                    --prompts runs/data/demonstrations.jsonl --prompts runs/data/ppo_prompts.jsonl --out runs/ppo
          srppo ppo --daemon /run/srppod/http.sock --prompts prompts.jsonl --out runs/ppo-seed1 --seed 1 --actor-lora-rank 8
          srppo ppo --out runs/ppo --resume
        """
    )

    @Option(help: "Pretrained model (frozen; without --daemon).") var pt: String?
    @Option(help: "SFT model (frozen reference; actor and critic start from it). Optional with --daemon.") var sft: String?
    @Option(help: "Score with the srppod listening on this HTTP socket instead of loading PT and SFT here.") var daemon: String?
    @Option(help: "The daemon's weight-image socket (default: the one its /v1/models names).") var daemonImages: String?
    @Flag(help: "With --daemon, start actor and critic from --sft on disk instead of the daemon's image.") var sftFromDisk = false
    @Option(help: "Client name given to the daemon (default: ppo-<run folder>-<pid>).") var client: String?
    @Option(help: "Prompt file (JSONL); repeat for several. Demonstration files work too.") var prompts: [String] = []
    @Option(help: "Run folder.") var out: String
    @Flag(help: "Continue the run in --out from its newest checkpoint.") var resume = false
    @Option(help: "JSON file with settings: keys of the \"ppo\" object of a run-config.json, only those to change; flags override it.") var config: String?

    @OptionGroup(title: "PPO settings (saved with the run)") var settings: PPOOptions
    @Option(help: "Stop after this many steps (resume later).") var maxSteps: Int?
    @OptionGroup var threading: ThreadOptions
    @Option(help: "Sequences decoded together while sampling.") var generateBatch = 8

    struct RunConfig: Codable {
        var command = "ppo"
        /// nil when the run scores through a daemon.
        var pt: String?
        /// nil when the run started from a daemon's SFT image without --sft.
        var sft: String?
        var prompts: [String]
        var ppo: PPOConfig
    }

    func validate() throws {
        if daemon != nil, pt != nil { throw ValidationError("give either --daemon or --pt, not both (the daemon serves PT)") }
        if daemon == nil, client != nil { throw ValidationError("--client needs --daemon") }
        if daemon != nil, settings.sharePrefixes { throw ValidationError("--share-prefixes applies to in-process scoring, not --daemon") }
        if daemon == nil, daemonImages != nil || sftFromDisk { throw ValidationError("--daemon-images and --sft-from-disk need --daemon") }
        if daemonImages != nil, sftFromDisk { throw ValidationError("give --daemon-images or --sft-from-disk, not both") }
        if let client, let problem = WireProtocol.nameProblem(client) { throw ValidationError("--client \(problem)") }
        guard generateBatch >= 1 else { throw ValidationError("--generate-batch must be at least 1") }
    }

    func run() throws {
        threading.apply()
        let started = DispatchTime.now()
        try CLI.ranks { ranks in
            let folder = try RunFolder(path: out)
            let runConfig = try resolveConfig(folder)
            let models = try prepare(runConfig)
            let sftModel = models.sft
            let textEncoder = try TextEncoding.promptResponseEncoder(for: sftModel)
            let encoder = textEncoder.map(TokenizerRecordEncoder.init)
            let limits = DataLoader.Limits(vocabularySize: sftModel.model.config.vocabSize, maxLength: sftModel.model.config.maxPositions)
            var examples: [TokenizedExample] = []
            for file in runConfig.prompts { examples += try DataLoader.prompts(path: file, encoder: encoder, limits: limits) }
            let trainer = try PPOTrainer(start: models.start, prompts: examples, scorer: models.scorer,
                                         sampler: KVCacheSampler(maxBatch: generateBatch),
                                         endTokens: TextEncoding.endTokens(of: sftModel.model, encoder: textEncoder),
                                         config: runConfig.ppo, run: folder)
            trainer.writeExtraFiles = { try TextEncoding.writeTokenizerFiles(for: sftModel, to: $0) }
            trainer.collective = ranks
            if resume {
                let step = try trainer.resume()
                FileHandle.standardError.write(Data("ppo: resuming \(out) at step \(step)/\(runConfig.ppo.steps)\n".utf8))
            } else if ranks.isLeader {
                try folder.saveConfig(runConfig)
                FileHandle.standardError.write(Data("ppo: \(examples.count) prompts, \(runConfig.ppo.steps) steps of \(runConfig.ppo.responsesPerStep) responses\n".utf8))
            }
            let startup = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            FileHandle.standardError.write(Data("ppo: actor and critic from \(models.start.origin); start-up \(String(format: "%.3f", startup)) s (command start to first rollout)\n".utf8))
            try trainer.run(maxSteps: maxSteps)
            if trainer.step == runConfig.ppo.steps, ranks.isLeader {
                try folder.writeModel { try TextEncoding.saveModel(trainer.actor, tokenizerOf: sftModel, to: $0) }
                FileHandle.standardError.write(Data("ppo: done; policy in \(out)/model\n".utf8))
            }
        }
    }

    /// In-process, everything from disk; with a daemon, its scoring and (unless --sft-from-disk) its SFT image.
    private func prepare(_ runConfig: RunConfig) throws -> PPOModels {
        guard let daemon else {
            guard let pt = runConfig.pt, let sft = runConfig.sft else {
                throw CLI.Failure(description: "\(out) was started against a daemon: resume it with --daemon SOCKET")
            }
            return try PPOModels.inProcess(pt: pt, sft: sft, sharePrefixes: runConfig.ppo.sharePrefixes)
        }
        return try PPOModels.daemon(socket: daemon, clientName: client ?? PPOModels.defaultClientName(out: out), sft: runConfig.sft,
                                    sftFromDisk: sftFromDisk, imageSocket: daemonImages) {
            FileHandle.standardError.write(Data("ppo: \($0)\n".utf8))
        }
    }

    private func resolveConfig(_ folder: RunFolder) throws -> RunConfig {
        if resume {
            if pt != nil || sft != nil || !prompts.isEmpty || config != nil || settings.given {
                throw CLI.Failure(description: "--resume continues \(out) with its saved settings: leave out --pt, --sft, --prompts and training flags (--daemon, --threads and --max-steps may be given)")
            }
            return try folder.loadConfig(RunConfig.self, over: RunConfig(prompts: [], ppo: PPOConfig()))
        }
        guard pt != nil || daemon != nil, sft != nil || daemon != nil, !prompts.isEmpty else {
            throw CLI.Failure(description: "a new run needs --pt and --sft (or --daemon) and at least one --prompts file (or --resume)")
        }
        try folder.requireNoCheckpoints()
        var c = try config.map { try RunFolder.settings(PPOConfig.self, file: $0, kind: "PPO", over: PPOConfig()) } ?? PPOConfig()
        try settings.apply(to: &c)
        return RunConfig(pt: pt, sft: sft, prompts: prompts, ppo: c)
    }
}
