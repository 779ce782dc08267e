import ArgumentParser
import Client
import Foundation
import Reward
import Tensor
import Training
import Transformer

/// `srppo bench ppo`: seconds per PPO step and where they go (generate, score, prepare, train).
struct BenchPPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "Seconds per PPO step with the coherent reward, split by phase.",
        discussion: """
        Runs --warmup untimed and then --steps timed PPO steps (the same trainer `srppo ppo` runs,
        embedded scoring, nothing written) and prints one JSON line per timed step and a summary with
        medians: seconds per step and per phase — generate (sampling the responses with the KV cache),
        score (PT and SFT log-probs of every response), prepare (the actor's old log-probs and the
        critic's values: one forward each), train (epochs × minibatches of actor and critic
        forward + backward + AdamW) — and response tokens per second. Under `mpirun -np N` each rank
        takes its share of every step (as `srppo ppo` does) and the summary adds the seconds spent in
        collective operations (summing gradients, gathering rollouts; waiting for the slowest rank
        included) and the bytes each rank sends per step. Without --sft, SFT is a second
        copy of PT (the reward is then 0, the work the same). Prompts: --prompts JSONL, or eight short
        built-in questions rendered with the model's chat template.

        Example:
          srppo bench ppo --pt SmolLM2-135M-Instruct.Q4_1.gguf --threads 2
          mpirun -np 2 srppo bench ppo --pt SmolLM2-135M-Instruct.Q4_1.gguf --threads 1
        """
    )

    @Option(help: "Pretrained model.") var pt: String
    @Option(help: "SFT model (default: a second copy of --pt).") var sft: String?
    @Option(help: "Prompt file (JSONL: prompt, messages or prompt_ids).") var prompts: String?
    @Option(help: "Timed steps.") var steps = 3
    @Option(help: "Untimed steps first.") var warmup = 1
    @Option(help: "Prompts per step.") var promptsPerStep = 4
    @Option(help: "Responses sampled per prompt.") var samplesPerPrompt = 2
    @Option(help: "Longest response in tokens.") var maxNewTokens = 32
    @Option(help: "Passes over each step's rollouts.") var epochs = 1
    @Option(help: "Responses per optimizer step.") var miniBatchSize = 8
    @Option(help: "Train actor and critic as LoRA adapters of this rank (default: full fine-tuning).") var loraRank: Int?
    @Flag(help: "Forward the prompt its samples share once (scoring and the actor's old log-probs), as `srppo ppo --share-prefixes`.")
    var sharePrefixes = false
    @Flag(help: "Run the critic's forward of the first minibatch again in its update instead of reusing the one that gave its values (the difference the reuse makes).")
    var separateForwards = false
    @Option(help: "Sequences decoded together while sampling.") var generateBatch = 8
    @OptionGroup var threading: ThreadOptions

    static let builtInPrompts = ["What is the capital of France?", "Name three primary colors.", "How many legs does a spider have?",
                                 "Write a haiku about the sea.", "What is 12 times 7?", "Give one tip for better sleep.",
                                 "Translate 'good morning' into Spanish.", "Why is the sky blue?"]

    func validate() throws {
        for (name, value) in [("--steps", steps), ("--prompts-per-step", promptsPerStep), ("--samples-per-prompt", samplesPerPrompt),
                              ("--max-new-tokens", maxNewTokens), ("--epochs", epochs), ("--mini-batch-size", miniBatchSize),
                              ("--generate-batch", generateBatch)] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be at least 0") }
    }

    func run() throws {
        threading.apply()
        try CLI.ranks { ranks in
            let ptModel = try ModelLoader.load(path: pt)
            let sftModel = try ModelLoader.load(path: sft ?? pt)
            let textEncoder = try TextEncoding.promptResponseEncoder(for: sftModel)
            let examples = try loadPrompts(sftModel, encoder: textEncoder.map(TokenizerRecordEncoder.init))
            var c = PPOConfig()
            c.steps = warmup + steps
            c.promptsPerStep = promptsPerStep
            c.samplesPerPrompt = samplesPerPrompt
            c.maxNewTokens = maxNewTokens
            c.epochs = epochs
            c.miniBatchSize = miniBatchSize
            c.checkpointEvery = Int.max
            if let loraRank {
                c.actorLoRA = try LoRAOptions.config(rank: loraRank, alpha: nil, targets: nil)
                c.criticLoRA = c.actorLoRA
            }
            let folder = NSTemporaryDirectory() + "srppo-bench-ppo-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: folder) }
            c.sharePrefixes = sharePrefixes
            let scorer = try EmbeddedScorer(pt: ptModel.model, sft: sftModel.model)
            scorer.sharePrefixes = sharePrefixes
            let trainer = try PPOTrainer(sft: sftModel.model, prompts: examples, scorer: scorer,
                                         sampler: KVCacheSampler(maxBatch: generateBatch),
                                         endTokens: TextEncoding.endTokens(of: sftModel.model, encoder: textEncoder),
                                         config: c, run: RunFolder(path: folder))
            trainer.reusesUpdateForwards = !separateForwards
            let meter = MeteredCollective(ranks)
            trainer.collective = meter
            for _ in 0..<warmup { _ = try trainer.trainStep() }
            let phases: [(String, KeyPath<PPOStepMetrics, Double>)] = [
                ("seconds_step", \.secondsStep), ("seconds_generate", \.secondsGenerate), ("seconds_score", \.secondsScore),
                ("seconds_prepare", \.secondsPrepare), ("seconds_train", \.secondsTrain)]
            var samples: [String: [Double]] = [:]
            var tokens: [Double] = [], communication: [Double] = [], bytes: [Double] = []
            for _ in 0..<steps {
                meter.reset()
                let m = try trainer.trainStep()
                communication.append(meter.seconds)
                bytes.append(Double(meter.bytes))
                guard ranks.isLeader else { continue }
                var line: [String: Any] = ["step": m.step, "response_length": m.responseLength, "eos_rate": m.eosRate]
                for (name, path) in phases {
                    samples[name, default: []].append(m[keyPath: path])
                    line[name] = m[keyPath: path]
                }
                let responseTokens = m.responseLength * Double(c.responsesPerStep)
                tokens.append(responseTokens)
                line["response_tokens"] = responseTokens
                Bench.emit(line)
            }
            guard ranks.isLeader else { return }
            let step = Bench.median(samples["seconds_step"]!)
            var summary: [String: Any] = [
                "ranks": ranks.size, "seconds_communicate": Bench.round(Bench.median(communication), 3),
                "share_communicate": Bench.round(Bench.median(communication) / step, 3),
                "bytes_sent_per_rank_per_step": Bench.median(bytes),
                "summary": "median of \(steps) steps after \(warmup) warm-up",
                "threads": Parallel.threads, "responses_per_step": c.responsesPerStep, "prompts_per_step": promptsPerStep,
                "samples_per_prompt": samplesPerPrompt, "max_new_tokens": maxNewTokens, "epochs": epochs, "mini_batch_size": miniBatchSize,
                "training": loraRank.map { "LoRA rank \($0), all projections" } ?? "full fine-tuning", "share_prefixes": sharePrefixes,
                "reuses_update_forwards": !separateForwards,
                "response_tokens_per_step": Bench.median(tokens), "response_tokens_per_s": Bench.round(Bench.median(tokens) / step, 2),
            ]
            for (p, _) in phases {
                let median = Bench.median(samples[p]!)
                summary[p] = Bench.round(median, 3)
                if p != "seconds_step" { summary["share_" + p.dropFirst("seconds_".count)] = Bench.round(median / step, 3) }
            }
            Bench.emit(summary)
        }
    }

    private func loadPrompts(_ loaded: LoadedModel, encoder: RecordEncoder?) throws -> [TokenizedExample] {
        let limits = DataLoader.Limits(vocabularySize: loaded.model.config.vocabSize, maxLength: loaded.model.config.maxPositions)
        if let prompts { return try DataLoader.prompts(path: prompts, encoder: encoder, limits: limits) }
        guard encoder != nil else { throw CLI.Failure(description: "this model has no tokenizer: give --prompts with prompt_ids") }
        let file = NSTemporaryDirectory() + "srppo-bench-ppo-prompts-\(getpid()).jsonl"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let lines = Self.builtInPrompts.map { text -> String in
            let data = try! JSONSerialization.data(withJSONObject: ["messages": [["role": "user", "content": text]]])
            return String(decoding: data, as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return try DataLoader.prompts(path: file, encoder: encoder, limits: limits)
    }
}
