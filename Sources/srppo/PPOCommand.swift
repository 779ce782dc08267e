import ArgumentParser
import Client
import Foundation
import Reward
import Tensor
import Training
import Transformer
import WeightImage
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
    @Option(help: "JSON file with settings (the \"ppo\" object of a run-config.json); flags override it.") var config: String?

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
            let (scorer, sftModel, start) = try prepare(runConfig)
            let textEncoder = try TextEncoding.promptResponseEncoder(for: sftModel)
            let encoder = textEncoder.map(TokenizerRecordEncoder.init)
            let limits = DataLoader.Limits(vocabularySize: sftModel.model.config.vocabSize, maxLength: sftModel.model.config.maxPositions)
            var examples: [TokenizedExample] = []
            for file in runConfig.prompts { examples += try DataLoader.prompts(path: file, encoder: encoder, limits: limits) }
            let trainer = try PPOTrainer(start: start, prompts: examples, scorer: scorer,
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
            FileHandle.standardError.write(Data("ppo: actor and critic from \(start.origin); start-up \(String(format: "%.3f", startup)) s (command start to first rollout)\n".utf8))
            try trainer.run(maxSteps: maxSteps)
            if trainer.step == runConfig.ppo.steps, ranks.isLeader {
                try folder.writeModel { try TextEncoding.saveModel(trainer.actor, tokenizerOf: sftModel, to: $0) }
                FileHandle.standardError.write(Data("ppo: done; policy in \(out)/model\n".utf8))
            }
        }
    }

    /// PT and SFT scoring, the SFT model (for its tokenizer and end tokens) and where actor and critic
    /// start: in-process, everything from disk; with a daemon, its scoring and (unless --sft-from-disk)
    /// its SFT image, which must be the SFT the reward uses.
    private func prepare(_ runConfig: RunConfig) throws -> (RewardScorer, LoadedModel, PolicyStart) {
        guard let daemon else {
            guard let pt = runConfig.pt, let sftPath = runConfig.sft else {
                throw CLI.Failure(description: "\(out) was started against a daemon: resume it with --daemon SOCKET")
            }
            let sft = try ModelLoader.load(path: sftPath)
            let scorer = try EmbeddedScorer(pt: try ModelLoader.load(path: pt).model, sft: sft.model)
            scorer.sharePrefixes = runConfig.ppo.sharePrefixes
            return (scorer, sft, .copies(of: sft.model, origin: sftPath))
        }
        let name = client ?? Self.defaultClientName(out: out)
        let scorer = try DaemonScorer(socketPath: daemon, clientName: name)
        FileHandle.standardError.write(Data("ppo: scoring through \(daemon) as client \(name)\n".utf8))
        var local: LoadedModel?
        if let sftPath = runConfig.sft {
            // The guard: the reward's SFT is the model the actor starts from.
            let loaded = try ModelLoader.load(path: sftPath)
            let hash = WeightImage.contentHash(of: loaded.model, dtype: scorer.sftDType)
            guard scorer.models.sft == hash else {
                throw CLI.Failure(description: "the daemon serves SFT \(scorer.models.sft.prefix(12)), but --sft \(sftPath) is \(hash.prefix(12)): the actor must start from the reward's SFT")
            }
            if sftFromDisk { return (scorer, loaded, .copies(of: loaded.model, origin: sftPath)) }
            local = loaded
        } else if sftFromDisk {
            throw CLI.Failure(description: "--sft-from-disk needs --sft PATH")
        }
        guard let images = daemonImages ?? scorer.imageSocket else {
            guard let local, let sftPath = runConfig.sft else {
                throw CLI.Failure(description: "the daemon at \(daemon) hands out no weight images (srppod --image-socket PATH): give --sft PATH to start actor and critic from disk, or --daemon-images PATH")
            }
            FileHandle.standardError.write(Data("ppo: the daemon hands out no weight images: actor and critic start from --sft \(sftPath) on disk\n".utf8))
            return (scorer, local, .copies(of: local.model, origin: sftPath))
        }
        let imageName = scorer.servedSFT.identity.image
        let received = try WeightImageClient(socketPath: images).fetch(name: imageName, expectedSHA256: scorer.models.sft)
        let start = try PolicyStart.image(received, origin: "image '\(imageName)' of \(images)")
        guard let checkpoint = runConfig.sft ?? scorer.servedSFT.source else {
            throw CLI.Failure(description: "the daemon does not say which checkpoint its SFT came from: give --sft PATH for the tokenizer")
        }
        let sftModel = LoadedModel(model: try received.map(mode: .shared).makeModel(), source: try ModelLoader.source(path: checkpoint))
        return (scorer, sftModel, start)
    }

    /// ppo-<run folder name>-<pid>, cut to the characters and length the daemon accepts.
    static func defaultClientName(out: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let base = String(URL(fileURLWithPath: out).lastPathComponent.filter(allowed.contains).prefix(40))
        return "ppo-\(base.isEmpty ? "run" : base)-\(getpid())"
    }

    private func resolveConfig(_ folder: RunFolder) throws -> RunConfig {
        if resume {
            if pt != nil || sft != nil || !prompts.isEmpty || config != nil || settings.given {
                throw CLI.Failure(description: "--resume continues \(out) with its saved settings: leave out --pt, --sft, --prompts and training flags (--daemon, --threads and --max-steps may be given)")
            }
            return try folder.loadConfig(RunConfig.self)
        }
        guard pt != nil || daemon != nil, sft != nil || daemon != nil, !prompts.isEmpty else {
            throw CLI.Failure(description: "a new run needs --pt and --sft (or --daemon) and at least one --prompts file (or --resume)")
        }
        if !folder.checkpoints().isEmpty {
            throw CLI.Failure(description: "\(out) already has checkpoints: use --resume to continue it, or another --out")
        }
        var c = PPOConfig()
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else { throw CLI.Failure(description: "\(config): cannot read file") }
            do { c = try JSONDecoder().decode(PPOConfig.self, from: data) } catch {
                throw CLI.Failure(description: "\(config): not a valid PPO config: \(error)")
            }
        }
        try settings.apply(to: &c)
        return RunConfig(pt: pt, sft: sft, prompts: prompts, ppo: c)
    }
}
