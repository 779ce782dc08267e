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
        resuming needs) and, at the end, model/ — the SRPPO policy. --resume continues after a kill \
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

    @Option(help: "PPO steps.") var steps: Int?
    @Option(help: "Prompts per step.") var promptsPerStep: Int?
    @Option(help: "Responses sampled per prompt.") var samplesPerPrompt: Int?
    @Option(help: "Longest response in tokens; longer ones are truncated.") var maxNewTokens: Int?
    @Option(help: "Sampling temperature.") var temperature: Double?
    @Option(help: "Nucleus sampling threshold.") var topP: Double?
    @Option(help: "Reward placement: eos (default), tokenwise or length-normalized.") var rewardPlacement: String?
    @Option(help: "Penalty for a response cut off before EOS (it gets no coherent reward).") var truncationPenalty: Double?
    @Flag(help: "Give truncated responses their coherent reward instead of the penalty.") var scoreTruncated = false
    @Option(help: "Opt-in symmetric clip of the sequence reward (logged).") var rewardClip: Double?
    @Option(help: "KL reference: sft (default), pt or none.") var klReference: String?
    @Option(help: "KL coefficient β.") var klCoefficient: Double?
    @Option(help: "Adapt β toward this KL per response.") var klTarget: Double?
    @Option(help: "Discount γ.") var gamma: Double?
    @Option(help: "GAE λ.") var lambda: Double?
    @Option(help: "Policy ratio clip ε.") var policyClip: Double?
    @Option(help: "Value clip (0: off).") var valueClip: Double?
    @Option(help: "Entropy bonus coefficient.") var entropyCoefficient: Double?
    @Option(help: "Passes over each step's rollouts.") var epochs: Int?
    @Option(help: "Responses per optimizer step.") var miniBatchSize: Int?
    @Option(help: "Actor learning rate.") var actorLr: Double?
    @Option(help: "Critic learning rate.") var criticLr: Double?
    @Option(help: "Value head learning rate (default 1e-3: the head starts from zero).") var valueHeadLr: Double?
    @Option(help: "Decay per step of the running return statistics the critic's targets are normalized by (0: off).")
    var valueNormalizationDecay: Double?
    @Option(help: "Steps in which only the critic learns.") var criticWarmupSteps: Int?
    @Option(help: "Train the actor as LoRA adapters of this rank.") var actorLoraRank: Int?
    @Option(help: "Train the critic trunk as LoRA adapters of this rank.") var criticLoraRank: Int?
    @Option(help: "LoRA target projections for both, comma-separated from q,k,v,o,gate,up,down.") var loraTargets: String?
    @Option(help: "Checkpoint every N steps.") var checkpointEvery: Int?
    @Option(help: "Checkpoints to keep.") var keep: Int?
    @Option(help: "Seed for prompt order and sampling.") var seed: UInt64?
    @Option(help: "Stop after this many steps (resume later).") var maxSteps: Int?
    @Option(help: "Worker threads (default: all cores).") var threads: Int?
    @Option(help: "Sequences decoded together while sampling.") var generateBatch = 8
    @Flag(help: "Forward the prompt its samples share once (in-process scoring and the actor's old log-probs): equal up to ~1e-5, faster.")
    var sharePrefixes = false
    @Flag(help: "Recompute activations in the backward: a third more update compute, a fraction of the activation memory (most of a LoRA trainer's own).")
    var recompute = false

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
        if daemon != nil, sharePrefixes { throw ValidationError("--share-prefixes applies to in-process scoring, not --daemon") }
        if daemon == nil, daemonImages != nil || sftFromDisk { throw ValidationError("--daemon-images and --sft-from-disk need --daemon") }
        if daemonImages != nil, sftFromDisk { throw ValidationError("give --daemon-images or --sft-from-disk, not both") }
        if let client, let problem = WireProtocol.nameProblem(client) { throw ValidationError("--client \(problem)") }
        guard generateBatch >= 1 else { throw ValidationError("--generate-batch must be at least 1") }
    }

    func run() throws {
        if let threads { Parallel.threads = threads }
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
                try folder.writeFinalModel { try TextEncoding.saveModel(trainer.actor, tokenizerOf: sftModel, to: $0) }
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
            if pt != nil || sft != nil || !prompts.isEmpty || config != nil || settingsGiven {
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
        if let steps { c.steps = steps }
        if let promptsPerStep { c.promptsPerStep = promptsPerStep }
        if let samplesPerPrompt { c.samplesPerPrompt = samplesPerPrompt }
        if let maxNewTokens { c.maxNewTokens = maxNewTokens }
        if let temperature { c.temperature = temperature }
        if let topP { c.topP = topP }
        if let rewardPlacement {
            guard let p = CoherentReward.Placement(rawValue: rewardPlacement) else {
                throw CLI.Failure(description: "--reward-placement must be eos, tokenwise or length-normalized, not '\(rewardPlacement)'")
            }
            c.reward.placement = p
        }
        if let truncationPenalty { c.reward.truncation = .penalty(truncationPenalty) }
        if scoreTruncated { c.reward.truncation = .score }
        if let rewardClip { c.reward.clip = rewardClip }
        if let klReference {
            guard let r = KLReference(rawValue: klReference) else {
                throw CLI.Failure(description: "--kl-reference must be sft, pt or none, not '\(klReference)'")
            }
            c.klReference = r
        }
        if let klCoefficient { c.klCoefficient = klCoefficient }
        if let klTarget { c.klTarget = klTarget }
        if let gamma { c.gamma = gamma }
        if let lambda { c.lambda = lambda }
        if let policyClip { c.policyClip = policyClip }
        if let valueClip { c.valueClip = valueClip > 0 ? valueClip : nil }
        if let entropyCoefficient { c.entropyCoefficient = entropyCoefficient }
        if let epochs { c.epochs = epochs }
        if let miniBatchSize { c.miniBatchSize = miniBatchSize }
        if let actorLr { c.actorLearningRate = actorLr }
        if let criticLr { c.criticLearningRate = criticLr }
        if let valueHeadLr { c.valueHeadLearningRate = valueHeadLr }
        if let valueNormalizationDecay {
            guard valueNormalizationDecay >= 0, valueNormalizationDecay < 1 else {
                throw CLI.Failure(description: "--value-normalization-decay must be in [0, 1) (0 turns normalization off)")
            }
            c.valueNormalizationDecay = valueNormalizationDecay > 0 ? valueNormalizationDecay : nil
        }
        if let criticWarmupSteps { c.criticWarmupSteps = criticWarmupSteps }
        if let actorLoraRank { c.actorLoRA = try LoRAOptions.config(rank: actorLoraRank, alpha: nil, targets: loraTargets) }
        if let criticLoraRank { c.criticLoRA = try LoRAOptions.config(rank: criticLoraRank, alpha: nil, targets: loraTargets) }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let keep { c.keepCheckpoints = keep }
        if let seed { c.seed = seed }
        if sharePrefixes { c.sharePrefixes = true }
        if recompute { c.recompute = true }
        for (name, value) in [("--steps", c.steps), ("--prompts-per-step", c.promptsPerStep), ("--samples-per-prompt", c.samplesPerPrompt),
                              ("--max-new-tokens", c.maxNewTokens), ("--epochs", c.epochs), ("--mini-batch-size", c.miniBatchSize),
                              ("--checkpoint-every", c.checkpointEvery), ("--keep", c.keepCheckpoints)] where value < 1 {
            throw CLI.Failure(description: "\(name) must be at least 1")
        }
        return RunConfig(pt: pt, sft: sft, prompts: prompts, ppo: c)
    }

    private var settingsGiven: Bool {
        [steps, promptsPerStep, samplesPerPrompt, maxNewTokens, epochs, miniBatchSize, criticWarmupSteps, actorLoraRank,
         criticLoraRank, checkpointEvery, keep].contains { $0 != nil }
            || [temperature, topP, truncationPenalty, rewardClip, klCoefficient, klTarget, gamma, lambda, policyClip, valueClip,
                entropyCoefficient, actorLr, criticLr, valueHeadLr, valueNormalizationDecay].contains { $0 != nil }
            || rewardPlacement != nil || klReference != nil || loraTargets != nil || seed != nil || scoreTruncated || sharePrefixes || recompute
    }
}
