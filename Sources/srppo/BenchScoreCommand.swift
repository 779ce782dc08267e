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
        tokens/s, the forward's GFLOP/s and, measured in the same run at the same thread count, the fp32
        sgemm GFLOP/s of the model's own projections and LM head at the batch's row count, so the
        forward reads as a fraction of what the machine's GEMM reaches.

        FLOPs counted (multiply-add = 2): q, k, v, o, gate, up and down projections of every token;
        attention scores and weighted values of the causal part only (L(L+1)/2 pairs per sequence and
        head, twice); the LM head at the scored positions. Norms, RoPE, SwiGLU and softmax are not
        counted.

        Example:
          srppo bench score --model ~/.cache/srppo/models/SmolLM2-135M-Instruct.Q4_1.gguf
          srppo bench score --model SmolLM2.gguf --batches 8x256 --threads 2 --repeats 5
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

    @Option(help: "Weight precision of the forward: f32 or bf16.")
    var dtype: DType = .f32

    struct BatchShape {
        let sequences, tokens: Int
    }

    func batchShapes() throws -> [BatchShape] {
        try batches.split(separator: ",").map { item in
            let parts = item.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] > 0, parts[1] > 1 else {
                throw ValidationError("a batch must look like 8x256 (sequences x tokens, tokens ≥ 2), got \"\(item)\"")
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
    }

    func run() throws {
        if dtype == .bf16 {
            try CLI.orExit {
                throw CLI.Failure(description: "--dtype bf16: the model has no bf16 weight path yet (the bf16 GEMM exists, the forward does not use it); use --dtype f32")
            }
        }
        let loaded = try CLI.orExit { try ModelLoader.load(path: model) }
        let llama = loaded.model
        let config = llama.config
        for threadCount in try Bench.threadList(threads) {
            Parallel.threads = threadCount
            for shape in try batchShapes() {
                let requests = randomRequests(shape, vocabSize: config.vocabSize)
                let scoredRows = requests.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
                let flops = forwardFlops(config, shape, scoredRows: scoredRows)
                let seconds = try CLI.orExit { try Bench.medianSeconds(repeats: repeats) { _ = try llama.logProbs(requests) } }
                let sgemm = sgemmReference(config, rows: shape.sequences * shape.tokens, scoredRows: scoredRows)
                let gflops = flops / seconds / 1e9
                Bench.emit([
                    "bench": "score", "dtype": dtype.rawValue, "threads": threadCount, "openblas_core": Gemm.blasCoreName,
                    "sequences": shape.sequences, "tokens_per_sequence": shape.tokens, "scored_rows": scoredRows,
                    "repeats": repeats, "seconds": Bench.round(seconds, 4),
                    "tokens_per_s": Bench.round(Double(shape.sequences * shape.tokens) / seconds),
                    "gflop_per_batch": Bench.round(flops / 1e9, 2), "gflops": Bench.round(gflops),
                    "sgemm_gflops": Bench.round(sgemm), "fraction_of_sgemm": Bench.round(gflops / sgemm, 3),
                ])
            }
        }
    }

    func randomRequests(_ shape: BatchShape, vocabSize: Int) -> [ScoringRequest] {
        var state: UInt64 = 0x5EED
        return (0..<shape.sequences).map { _ in
            let tokens = (0..<shape.tokens).map { _ -> Int32 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int32((state >> 33) % UInt64(vocabSize))
            }
            return ScoringRequest(tokens: tokens, firstScored: shape.tokens - (scored ?? shape.tokens - 1))
        }
    }

    /// Multiply-adds × 2 of one forward over the batch (see the command's discussion).
    func forwardFlops(_ c: LlamaConfig, _ shape: BatchShape, scoredRows: Int) -> Double {
        let d = Double(c.hiddenSize), f = Double(c.intermediateSize), q = Double(c.qDim), kv = Double(c.kvDim)
        let tokens = Double(shape.sequences * shape.tokens)
        let projections = 2 * tokens * (d * (q + 2 * kv) + q * d + 3 * d * f)
        let L = Double(shape.tokens)
        let attention = Double(shape.sequences) * Double(c.numHeads) * 2 * 2 * Double(c.headDim) * L * (L + 1) / 2
        let lmHead = 2 * Double(scoredRows) * d * Double(c.vocabSize)
        return Double(c.numLayers) * (projections + attention) + lmHead
    }

    /// FLOP-weighted fp32 sgemm GFLOP/s on the model's shapes: the seven projections at `rows` rows
    /// (in the proportions of one layer) and the LM head at the scored rows.
    func sgemmReference(_ c: LlamaConfig, rows: Int, scoredRows: Int) -> Double {
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
}
