import ArgumentParser
import Foundation
import Tensor
import Transformer

/// `srppo bench score`: the scoring forward (`LlamaModel.logProbs`) in tokens/s and GFLOP/s, next to
/// the sgemm GFLOP/s of the same machine on the model's own shapes, measured in the same run.
struct BenchScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Scoring throughput (tokens/s, GFLOP/s, fraction of sgemm peak) on a real model.",
        discussion: """
        Scores batches of random token ids through the public LlamaModel.logProbs API. For each thread
        count and batch shape (sequences x tokens), prints one JSON line with medians of --repeats runs:
        tokens/s, the forward's GFLOP/s and, measured in the same run at the same thread count (once
        after each timed run, so both see the same machine load), the fp32 sgemm GFLOP/s of the model's own projections and LM head at the batch's row count, so the
        forward reads as a fraction of what the machine's GEMM reaches.

        FLOPs counted (multiply-add = 2): q, k, v, o, gate, up and down projections of every token;
        attention scores and weighted values of the causal part only (L(L+1)/2 pairs per sequence and
        head, twice); the LM head at the scored positions. Norms, RoPE, SwiGLU and softmax are not
        counted.

        --dtype f32,bf16 measures both weight precisions on the same batches; the bf16 lines carry
        "speedup_vs_f32" (tokens/s ratio). With --prefix N, every sequence of a batch starts with the
        same N-token prompt and is scored on the tokens after it (PPO's n samples per prompt): each
        batch runs unshared and with prefix sharing (the prompt's keys/values computed once), and the
        shared line carries "speedup_vs_unshared" and the largest |Δ log-prob| between the two.
        FLOPs and tokens/s always count the unshared work, so the shared line's figures read as
        effective throughput.

        Example:
          srppo bench score --model ~/.cache/srppo/models/SmolLM2-135M-Instruct.Q4_1.gguf
          srppo bench score --model SmolLM2.gguf --batches 8x256 --threads 2 --repeats 5 --dtype f32,bf16
          srppo bench score --model SmolLM2.gguf --batches 4x256 --prefix 128 --threads 2
        """
    )

    enum DType: String, ExpressibleByArgument, CaseIterable {
        case f32, bf16
    }

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Batch shapes, sequences x tokens, comma-separated.")
    var batches: String = "8x256,1x512,32x64"

    @Option(help: "Thread counts to run, comma-separated.")
    var threads: String = "1,2"

    @Option(help: "Timed runs per measurement (the median is reported).")
    var repeats: Int = 3

    @Option(help: "Scored tokens at the end of each sequence (default: all but the first).")
    var scored: Int?

    @Option(help: "Weight precisions of the forward, comma-separated: f32, bf16.")
    var dtype: String = "f32"

    @Option(help: "Shared prompt length: sequences share their first N tokens; runs unshared and shared.")
    var prefix: Int?

    func dtypes() throws -> [DType] {
        try dtype.split(separator: ",").map { item in
            guard let value = DType(rawValue: String(item)) else {
                throw ValidationError("--dtype must list f32 and/or bf16, got \"\(item)\"")
            }
            return value
        }
    }

    struct BatchShape {
        let sequences, tokens: Int
    }

    func batchShapes() throws -> [BatchShape] {
        try batches.split(separator: ",").map { item in
            let parts = item.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] > 0, parts[1] > 1 else {
                throw ValidationError("a batch must look like 8x256 (sequences x tokens, tokens ≥ 2), got \"\(item)\"")
            }
            if let prefix, prefix < 1 || prefix >= parts[1] {
                throw ValidationError("--prefix \(prefix) must be in 1..<\(parts[1]) for batch \(item)")
            }
            if let scored, scored >= parts[1] {
                throw ValidationError("--scored \(scored) must be below the \(parts[1]) tokens of batch \(item)")
            }
            return BatchShape(sequences: parts[0], tokens: parts[1])
        }
    }

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        if let scored, scored < 1 { throw ValidationError("--scored must be at least 1") }
        _ = try Bench.threadList(threads)
        _ = try batchShapes()
        _ = try dtypes()
        if prefix != nil && scored != nil { throw ValidationError("--prefix sets the scored tokens: leave out --scored") }
    }

    func run() throws {
        let loaded = try CLI.orExit { try ModelLoader.load(path: model) }
        let llama = loaded.model
        let config = llama.config
        for threadCount in try Bench.threadList(threads) {
            Parallel.threads = threadCount
            for shape in try batchShapes() {
                let requests = randomRequests(shape, vocabSize: config.vocabSize)
                let scoredRows = requests.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
                let flops = forwardFlops(config, shape, scoredRows: scoredRows)
                var f32TokensPerSecond: Double?
                for precision in try dtypes() {
                    llama.weightPrecision = precision == .bf16 ? .bf16 : .f32
                    let modes = prefix == nil ? [false] : [false, true]
                    var unsharedSeconds = 0.0
                    var unsharedScores: [[Float]] = []
                    // Unshared and shared runs alternate, so a pair sees the same machine load; the
                    // speedup is the median of the pairs' ratios.
                    var times: [Bool: [Double]] = [:], sgemmSamples: [Bool: [Double]] = [:], lastScores: [Bool: [[Float]]] = [:]
                    for _ in 0...repeats {  // the first round is a warm-up, left out of the medians
                        for share in modes {
                            let start = Bench.now()
                            lastScores[share] = try CLI.orExit { try llama.logProbs(requests, sharePrefixes: share) }
                            times[share, default: []].append(Bench.now() - start)
                            // The sgemm reference right after each run, so both see the same machine load.
                            sgemmSamples[share, default: []].append(Bench.sgemmReference(config, rows: shape.sequences * shape.tokens,
                                                                                         scoredRows: scoredRows, repeats: 1))
                        }
                    }
                    for share in modes {
                        let scores = lastScores[share]!
                        let seconds = Bench.median(Array(times[share]!.dropFirst()))
                        let sgemm = Bench.median(Array(sgemmSamples[share]!.dropFirst()))
                        let gflops = flops / seconds / 1e9
                        let tokensPerSecond = Double(shape.sequences * shape.tokens) / seconds
                        var line: [String: Any] = [
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
                        Bench.emit(line)
                    }
                }
                llama.weightPrecision = .f32
            }
        }
    }

    /// Random sequences of the batch's shape; with --prefix they all start with the same prompt.
    func randomRequests(_ shape: BatchShape, vocabSize: Int) -> [ScoringRequest] {
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

    /// Multiply-adds × 2 of one forward over the batch (see the command's discussion).
    func forwardFlops(_ c: LlamaConfig, _ shape: BatchShape, scoredRows: Int) -> Double {
        Bench.forwardFlops(c, sequences: shape.sequences, tokens: shape.tokens, scoredRows: scoredRows)
    }

    func sgemmReference(_ c: LlamaConfig, rows: Int, scoredRows: Int) -> Double {
        Bench.sgemmReference(c, rows: rows, scoredRows: scoredRows, repeats: repeats)
    }
}

extension Bench {
    /// FLOP-weighted fp32 sgemm GFLOP/s on the model's shapes: the seven projections at `rows` rows
    /// (in the proportions of one layer) and the LM head at the scored rows.
    static func sgemmReference(_ c: LlamaConfig, rows: Int, scoredRows: Int, repeats: Int) -> Double {
        let d = c.hiddenSize, f = c.intermediateSize
        let shapes: [(m: Int, n: Int, k: Int, count: Double)] = [
            (rows, c.qDim, d, 1), (rows, c.kvDim, d, 2), (rows, d, c.qDim, 1),
            (rows, f, d, 2), (rows, d, f, 1),
            (scoredRows, c.vocabSize, d, 1 / Double(c.numLayers)),
        ]
        var flops = 0.0, seconds = 0.0
        for s in shapes {
            let problem = GemmProblem(m: s.m, n: s.n, k: s.k)
            seconds += s.count * Bench.medianSeconds(repeats: repeats) { problem.runFP32() }
            flops += s.count * problem.flops
        }
        return flops / seconds / 1e9
    }

    /// Multiply-adds × 2 of one scoring forward over `sequences` × `tokens` (projections, the causal
    /// part of attention, the LM head at `scoredRows` rows).
    static func forwardFlops(_ c: LlamaConfig, sequences: Int, tokens: Int, scoredRows: Int) -> Double {
        let d = Double(c.hiddenSize), f = Double(c.intermediateSize), q = Double(c.qDim), kv = Double(c.kvDim)
        let allTokens = Double(sequences * tokens)
        let projections = 2 * allTokens * (d * (q + 2 * kv) + q * d + 3 * d * f)
        let L = Double(tokens)
        let attention = Double(sequences) * Double(c.numHeads) * 2 * 2 * Double(c.headDim) * L * (L + 1) / 2
        let lmHead = 2 * Double(scoredRows) * d * Double(c.vocabSize)
        return Double(c.numLayers) * (projections + attention) + lmHead
    }
}
