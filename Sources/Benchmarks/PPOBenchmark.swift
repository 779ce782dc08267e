import Client
import Foundation
import Compute
import Training
import Transformer

/// `bench ppo`: seconds per PPO step and where they go (generate, score, prepare, train), with the
/// trainer `srppo ppo` runs, embedded scoring and nothing written; under MPI each rank takes its
/// share of every step and the time and bytes of the collective operations are measured too.
public struct PPOBenchmark {
    public struct Settings {
        /// Pretrained model.
        public var pt: String
        /// SFT model (nil: a second copy of `pt`; the reward is then 0, the work the same).
        public var sft: String?
        /// Prompt file (JSONL: prompt, messages or prompt_ids); nil: `builtInPrompts` in the chat template.
        public var prompts: String?
        /// Timed steps, after `warmup` untimed ones.
        public var steps: Int
        public var warmup: Int
        public var promptsPerStep: Int
        public var samplesPerPrompt: Int
        public var maxNewTokens: Int
        public var epochs: Int
        public var miniBatchSize: Int
        /// Actor and critic as LoRA adapters (nil: full fine-tuning).
        public var lora: LoRAConfig?
        /// Forward the prompt its samples share once, as `srppo ppo --share-prefixes`.
        public var sharePrefixes: Bool
        /// Whether the critic's update reuses the forward that gave its values.
        public var reusesUpdateForwards: Bool
        /// Sequences decoded together while sampling.
        public var generateBatch: Int

        public init(pt: String, sft: String?, prompts: String?, steps: Int, warmup: Int, promptsPerStep: Int, samplesPerPrompt: Int,
                    maxNewTokens: Int, epochs: Int, miniBatchSize: Int, lora: LoRAConfig?, sharePrefixes: Bool,
                    reusesUpdateForwards: Bool, generateBatch: Int) {
            self.pt = pt; self.sft = sft; self.prompts = prompts; self.steps = steps; self.warmup = warmup
            self.promptsPerStep = promptsPerStep; self.samplesPerPrompt = samplesPerPrompt; self.maxNewTokens = maxNewTokens
            self.epochs = epochs; self.miniBatchSize = miniBatchSize; self.lora = lora; self.sharePrefixes = sharePrefixes
            self.reusesUpdateForwards = reusesUpdateForwards; self.generateBatch = generateBatch
        }
    }

    public static let builtInPrompts = ["What is the capital of France?", "Name three primary colors.", "How many legs does a spider have?",
                                        "Write a haiku about the sea.", "What is 12 times 7?", "Give one tip for better sleep.",
                                        "Translate 'good morning' into Spanish.", "Why is the sky blue?"]

    public let settings: Settings

    public init(_ settings: Settings) {
        self.settings = settings
    }

    /// On the leader rank, one line per timed step and a summary of medians; the other ranks emit nothing.
    public func run(ranks: Collective, emit: Emit) throws {
        let s = settings
        let ptModel = try ModelLoader.load(path: s.pt)
        let sftModel = try ModelLoader.load(path: s.sft ?? s.pt)
        let textEncoder = try TextEncoding.promptResponseEncoder(for: sftModel)
        let examples = try loadPrompts(sftModel, encoder: textEncoder.map(TokenizerRecordEncoder.init))
        var c = PPOConfig()
        c.steps = s.warmup + s.steps
        c.promptsPerStep = s.promptsPerStep
        c.samplesPerPrompt = s.samplesPerPrompt
        c.maxNewTokens = s.maxNewTokens
        c.epochs = s.epochs
        c.miniBatchSize = s.miniBatchSize
        c.checkpointEvery = Int.max
        c.actorLoRA = s.lora
        c.criticLoRA = s.lora
        let folder = NSTemporaryDirectory() + "srppo-bench-ppo-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        c.sharePrefixes = s.sharePrefixes
        let scorer = try EmbeddedScorer(pt: ptModel.model, sft: sftModel.model)
        scorer.sharePrefixes = s.sharePrefixes
        let trainer = try PPOTrainer(sft: sftModel.model, prompts: examples, scorer: scorer,
                                     sampler: KVCacheSampler(maxBatch: s.generateBatch),
                                     endTokens: TextEncoding.endTokens(of: sftModel.model, encoder: textEncoder),
                                     config: c, run: RunFolder(path: folder))
        trainer.reusesUpdateForwards = s.reusesUpdateForwards
        let meter = MeteredCollective(ranks)
        trainer.collective = meter
        for _ in 0..<s.warmup { _ = try trainer.trainStep() }
        let phases: [(String, KeyPath<PPOStepMetrics, Double>)] = [
            ("seconds_step", \.secondsStep), ("seconds_generate", \.secondsGenerate), ("seconds_score", \.secondsScore),
            ("seconds_prepare", \.secondsPrepare), ("seconds_train", \.secondsTrain)]
        var samples: [String: [Double]] = [:]
        var tokens: [Double] = [], communication: [Double] = [], bytes: [Double] = []
        for _ in 0..<s.steps {
            meter.reset()
            let m = try trainer.trainStep()
            communication.append(meter.seconds)
            bytes.append(Double(meter.bytes))
            guard ranks.isLeader else { continue }
            var line: ReportLine = ["step": m.step, "response_length": m.responseLength, "eos_rate": m.eosRate]
            for (name, path) in phases {
                samples[name, default: []].append(m[keyPath: path])
                line[name] = m[keyPath: path]
            }
            let responseTokens = m.responseLength * Double(c.responsesPerStep)
            tokens.append(responseTokens)
            line["response_tokens"] = responseTokens
            try emit(line)
        }
        guard ranks.isLeader else { return }
        let step = Bench.median(samples["seconds_step"]!)
        var summary: ReportLine = [
            "ranks": ranks.size, "seconds_communicate": Bench.round(Bench.median(communication), 3),
            "share_communicate": Bench.round(Bench.median(communication) / step, 3),
            "bytes_sent_per_rank_per_step": Bench.median(bytes),
            "summary": "median of \(s.steps) steps after \(s.warmup) warm-up",
            "threads": Parallel.threads, "responses_per_step": c.responsesPerStep, "prompts_per_step": s.promptsPerStep,
            "samples_per_prompt": s.samplesPerPrompt, "max_new_tokens": s.maxNewTokens, "epochs": s.epochs,
            "mini_batch_size": s.miniBatchSize,
            "training": s.lora.map { "LoRA rank \($0.rank), all projections" } ?? "full fine-tuning", "share_prefixes": s.sharePrefixes,
            "reuses_update_forwards": s.reusesUpdateForwards,
            "response_tokens_per_step": Bench.median(tokens), "response_tokens_per_s": Bench.round(Bench.median(tokens) / step, 2),
        ]
        for (p, _) in phases {
            let median = Bench.median(samples[p]!)
            summary[p] = Bench.round(median, 3)
            if p != "seconds_step" { summary["share_" + p.dropFirst("seconds_".count)] = Bench.round(median / step, 3) }
        }
        try emit(summary)
    }

    private func loadPrompts(_ loaded: LoadedModel, encoder: RecordEncoder?) throws -> [TokenizedExample] {
        let limits = DataLoader.Limits(vocabularySize: loaded.model.config.vocabSize, maxLength: loaded.model.config.maxPositions)
        if let prompts = settings.prompts { return try DataLoader.prompts(path: prompts, encoder: encoder, limits: limits) }
        guard encoder != nil else { throw BenchmarkError("this model has no tokenizer: give --prompts with prompt_ids") }
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
