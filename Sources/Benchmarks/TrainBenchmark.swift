import Compute
import Training
import Transformer

/// `bench train`: one training step (forward, LM-head loss and backward, clipping, AdamW) on a real
/// model, full fine-tuning and LoRA, in tokens/s and GFLOP/s against the same run's sgemm.
public struct TrainBenchmark {
    /// Full fine-tuning (every parameter and its moments) or LoRA adapters on all seven projections.
    public enum Mode: String {
        case full, lora
    }

    public struct Settings {
        public var sequences: Int
        public var tokens: Int
        public var modes: [Mode]
        public var threads: [Int]
        /// Timed steps per measurement (the median is reported).
        public var repeats: Int
        public var loraRank: Int
        /// Keep only each layer's input and recompute the rest in the backward.
        public var recompute: Bool

        public init(sequences: Int, tokens: Int, modes: [Mode], threads: [Int], repeats: Int, loraRank: Int, recompute: Bool) {
            self.sequences = sequences; self.tokens = tokens; self.modes = modes; self.threads = threads
            self.repeats = repeats; self.loraRank = loraRank; self.recompute = recompute
        }
    }

    public let model: LlamaModel
    public let settings: Settings

    public init(model: LlamaModel, _ settings: Settings) {
        self.model = model
        self.settings = settings
    }

    /// The batch shape "8x256" (sequences x tokens, tokens ≥ 2).
    public static func batchShape(_ text: String) throws -> (sequences: Int, tokens: Int) {
        guard let shape = Bench.dimensions(Substring(text), minimumSecond: 2) else {
            throw BenchmarkError("--batch must look like 8x256 (sequences x tokens, tokens ≥ 2), got \"\(text)\"")
        }
        return shape
    }

    /// Modes "full,lora".
    public static func modes(_ text: String) throws -> [Mode] {
        let list = text.split(separator: ",").map { Mode(rawValue: String($0)) }
        guard !list.isEmpty, list.allSatisfy({ $0 != nil }) else {
            throw BenchmarkError("--modes must list full and/or lora, got \"\(text)\"")
        }
        return list.map { $0! }
    }

    /// One line per thread count and mode, with medians of the steps and of each phase. The model's
    /// weights are restored after each mode, so every mode starts from the same ones.
    public func run(emit: Emit) throws {
        let (sequences, tokens, repeats, recompute) = (settings.sequences, settings.tokens, settings.repeats, settings.recompute)
        let llama = model
        let config = llama.config
        var state: UInt64 = 0x7EA1
        let requests = (0..<sequences).map { _ in
            ScoringRequest(tokens: (0..<tokens).map { _ -> Int32 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int32((state >> 33) % UInt64(config.vocabSize))
            }, firstScored: 1)
        }
        // Every token but the first is scored (the loss of plain LM training).
        let scoredRows = sequences * (tokens - 1)
        let forwardFlops = ForwardCost.forwardFlops(config, sequences: sequences, tokens: tokens, scoredRows: scoredRows)
        for threadCount in settings.threads {
            Parallel.threads = threadCount
            for mode in settings.modes {
                let full = mode == .full
                llama.adapters = full ? nil : LoRAAdapters(config: LoRAConfig(rank: settings.loraRank), model: config, seed: 1)
                let parameters = full ? TrainableParameters.fullModel(llama) : TrainableParameters.adapters(llama.adapters!)
                let optimizer = AdamW(config: AdamWConfig(weightDecay: 0.1), parameterCount: parameters.count)
                // The steps change the weights: restore them afterwards for the next mode.
                let saved = full ? AlignedBuffer<Float>(count: llama.layout.parameterCount) : nil
                saved?.pointer.update(from: llama.weights, count: llama.layout.parameterCount)
                var phases: [String: [Double]] = ["forward": [], "head": [], "backward": [], "optimizer": []]
                var loss = 0.0
                var sgemmSamples: [Double] = []
                let weight = 1 / Float(scoredRows)
                var stepSeconds: [Double] = []
                for _ in 0...repeats {  // the first step is a warm-up, left out of every median
                    let start = Bench.now()
                    var t = start
                    func lap(_ name: String) { let now = Bench.now(); phases[name]!.append(now - t); t = now }
                    parameters.zeroGradients()
                    let tape = try llama.trainingForward(requests, recompute: recompute)
                    lap("forward")
                    let head = llama.lmHeadForwardBackward(tape, computeEntropy: false,
                                                           gradients: full ? parameters.gradients : nil) { _, _, _ in (-weight, 0) }
                    loss = -head.logProbs.reduce(0.0) { $0 + Double($1) } / Double(scoredRows)
                    lap("head")
                    llama.backward(tape, headInputGradient: head.headInputGradient, into: full ? parameters.gradients : nil,
                                   adapterGradients: full ? nil : parameters.gradients)
                    lap("backward")
                    _ = parameters.clipGradients(maxNorm: 1)
                    optimizer.update(parameters, learningRate: 1e-5)
                    lap("optimizer")
                    stepSeconds.append(Bench.now() - start)
                    // The sgemm reference right after each step, so both see the same machine load.
                    sgemmSamples.append(ForwardCost.sgemmReference(config, rows: sequences * tokens, scoredRows: scoredRows, repeats: 1))
                }
                let seconds = Bench.median(Array(stepSeconds.dropFirst()))
                let sgemm = Bench.median(Array(sgemmSamples.dropFirst()))
                if let saved { llama.weights.update(from: saved.pointer, count: llama.layout.parameterCount) }
                llama.adapters = nil
                // The frozen base of LoRA needs no ∂weight: 2F instead of 3F.
                let flops = (full ? 3 : 2) * forwardFlops
                let gflops = flops / seconds / 1e9
                var line: ReportLine = [
                    "bench": "train", "mode": mode.rawValue, "threads": threadCount, "openblas_core": Gemm.blasCoreName,
                    "sequences": sequences, "tokens_per_sequence": tokens, "recompute": recompute,
                    "trainable_parameters": parameters.count, "repeats": repeats, "seconds": Bench.round(seconds, 4),
                    "tokens_per_s": Bench.round(Double(sequences * tokens) / seconds),
                    "gflop_per_step": Bench.round(flops / 1e9, 1), "gflops": Bench.round(gflops),
                    "sgemm_gflops": Bench.round(sgemm), "fraction_of_sgemm": Bench.round(gflops / sgemm, 3),
                    "loss": Bench.round(loss, 3),
                ]
                if !full { line["lora_rank"] = settings.loraRank }
                for (name, values) in phases {
                    line["\(name)_s"] = Bench.round(Bench.median(Array(values.dropFirst())), 4)  // the warm-up step left out
                }
                try emit(line)
            }
        }
    }
}
