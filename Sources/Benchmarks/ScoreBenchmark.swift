import Compute
import Transformer

/// `bench score`: the scoring forward (`LlamaModel.logProbs`) in tokens/s and GFLOP/s, next to the
/// sgemm GFLOP/s of the same machine on the model's own shapes, measured in the same run.
public struct ScoreBenchmark {
    /// Sequences × tokens of one scored batch.
    public struct BatchShape: Equatable {
        public let sequences, tokens: Int

        public init(sequences: Int, tokens: Int) {
            self.sequences = sequences
            self.tokens = tokens
        }
    }

    public struct Settings {
        public var threads: [Int]
        public var batches: [BatchShape]
        /// Timed runs per measurement (the median is reported).
        public var repeats: Int
        /// Scored tokens at the end of each sequence (nil: all but the first).
        public var scored: Int?
        public var precisions: [WeightPrecision]
        /// Shared prompt length: every sequence of a batch starts with the same `prefix` tokens and
        /// is scored after them; each batch then runs unshared and with prefix sharing.
        public var prefix: Int?

        public init(threads: [Int], batches: [BatchShape], repeats: Int, scored: Int?, precisions: [WeightPrecision], prefix: Int?) {
            self.threads = threads; self.batches = batches; self.repeats = repeats
            self.scored = scored; self.precisions = precisions; self.prefix = prefix
        }
    }

    public let model: LlamaModel
    public let settings: Settings

    public init(model: LlamaModel, _ settings: Settings) {
        self.model = model
        self.settings = settings
    }

    /// Batch shapes "8x256,1x512" (tokens ≥ 2), each long enough for `prefix` and `scored`.
    public static func batchShapes(_ text: String, prefix: Int?, scored: Int?) throws -> [BatchShape] {
        try text.split(separator: ",").map { item in
            guard let (sequences, tokens) = Bench.dimensions(item, minimumSecond: 2) else {
                throw BenchmarkError("a batch must look like 8x256 (sequences x tokens, tokens ≥ 2), got \"\(item)\"")
            }
            if let prefix, prefix < 1 || prefix >= tokens {
                throw BenchmarkError("--prefix \(prefix) must be in 1..<\(tokens) for batch \(item)")
            }
            if let scored, scored >= tokens {
                throw BenchmarkError("--scored \(scored) must be below the \(tokens) tokens of batch \(item)")
            }
            return BatchShape(sequences: sequences, tokens: tokens)
        }
    }

    /// Weight precisions "f32,bf16".
    public static func precisions(_ text: String) throws -> [WeightPrecision] {
        try text.split(separator: ",").map { item in
            guard let value = WeightPrecision(rawValue: String(item)) else {
                throw BenchmarkError("--dtype must list f32 and/or bf16, got \"\(item)\"")
            }
            return value
        }
    }

    /// One line per thread count, batch shape, precision and (with a prefix) sharing mode.
    public func run(emit: Emit) throws {
        let (repeats, prefix) = (settings.repeats, settings.prefix)
        let config = model.config
        for threadCount in settings.threads {
            Parallel.threads = threadCount
            for shape in settings.batches {
                let requests = randomRequests(shape, vocabSize: config.vocabSize)
                let scoredRows = requests.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
                let flops = ForwardCost.forwardFlops(config, sequences: shape.sequences, tokens: shape.tokens, scoredRows: scoredRows)
                var f32TokensPerSecond: Double?
                for precision in settings.precisions {
                    model.weightPrecision = precision
                    let modes = prefix == nil ? [false] : [false, true]
                    var unsharedSeconds = 0.0
                    var unsharedScores: [[Float]] = []
                    // Unshared and shared runs alternate, so a pair sees the same machine load; the
                    // speedup is the median of the pairs' ratios.
                    var times: [Bool: [Double]] = [:], sgemmSamples: [Bool: [Double]] = [:], lastScores: [Bool: [[Float]]] = [:]
                    for _ in 0...repeats {  // the first round is a warm-up, left out of the medians
                        for share in modes {
                            let start = Bench.now()
                            lastScores[share] = try model.logProbs(requests, sharePrefixes: share)
                            times[share, default: []].append(Bench.now() - start)
                            // The sgemm reference right after each run, so both see the same machine load.
                            sgemmSamples[share, default: []].append(ForwardCost.sgemmReference(
                                config, rows: shape.sequences * shape.tokens, scoredRows: scoredRows, repeats: 1))
                        }
                    }
                    for share in modes {
                        let scores = lastScores[share]!
                        let seconds = Bench.median(Array(times[share]!.dropFirst()))
                        let sgemm = Bench.median(Array(sgemmSamples[share]!.dropFirst()))
                        let gflops = flops / seconds / 1e9
                        let tokensPerSecond = Double(shape.sequences * shape.tokens) / seconds
                        var line: ReportLine = [
                            "bench": "score", "dtype": precision.rawValue, "threads": threadCount, "openblas_core": Gemm.blasCoreName,
                            "sequences": shape.sequences, "tokens_per_sequence": shape.tokens, "scored_rows": scoredRows,
                            "repeats": repeats, "seconds": Bench.round(seconds, 4),
                            "tokens_per_s": Bench.round(tokensPerSecond),
                            "gflop_per_batch": Bench.round(flops / 1e9, 2), "gflops": Bench.round(gflops),
                            "sgemm_gflops": Bench.round(sgemm), "fraction_of_sgemm": Bench.round(gflops / sgemm, 3),
                        ]
                        if precision == .bf16 { line["bf16_kernel"] = Gemm.BF16Kernel.resolved.description }
                        if let prefix {
                            line["prefix"] = prefix
                            line["share_prefixes"] = share
                        }
                        if share {
                            let ratios = zip(times[false]!, times[true]!).dropFirst().map { $0 / $1 }
                            line["speedup_vs_unshared"] = Bench.round(Bench.median(Array(ratios)), 3)
                            line["speedup_of_medians"] = Bench.round(unsharedSeconds / seconds, 3)
                            var worst: Float = 0
                            for (a, b) in zip(scores, unsharedScores) { for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) } }
                            line["max_abs_diff_vs_unshared"] = Double(worst)
                        } else {
                            unsharedSeconds = seconds
                            unsharedScores = scores
                            if precision == .f32 { f32TokensPerSecond = tokensPerSecond }
                            if precision == .bf16, let f32TokensPerSecond {
                                line["speedup_vs_f32"] = Bench.round(tokensPerSecond / f32TokensPerSecond, 3)
                            }
                        }
                        try emit(line)
                    }
                }
                model.weightPrecision = .f32
            }
        }
    }

    /// Random sequences of the batch's shape; with a prefix they all start with the same prompt.
    func randomRequests(_ shape: BatchShape, vocabSize: Int) -> [ScoringRequest] {
        let (prefix, scored) = (settings.prefix, settings.scored)
        var state: UInt64 = 0x5EED
        func next() -> Int32 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int32((state >> 33) % UInt64(vocabSize))
        }
        let prompt = (0..<(prefix ?? 0)).map { _ in next() }
        return (0..<shape.sequences).map { _ in
            let tokens = prompt + (0..<shape.tokens - prompt.count).map { _ in next() }
            let first = prefix ?? shape.tokens - (scored ?? shape.tokens - 1)
            return ScoringRequest(tokens: tokens, firstScored: first)
        }
    }
}
