import ArgumentParser
import Benchmarks
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

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        if let scored, scored < 1 { throw ValidationError("--scored must be at least 1") }
        _ = try settings()
        if prefix != nil && scored != nil { throw ValidationError("--prefix sets the scored tokens: leave out --scored") }
    }

    func settings() throws -> ScoreBenchmark.Settings {
        try BenchCommand.settings {
            let threads = try Bench.threadList(self.threads)
            let batches = try ScoreBenchmark.batchShapes(self.batches, prefix: prefix, scored: scored)
            return ScoreBenchmark.Settings(threads: threads, batches: batches, repeats: repeats, scored: scored,
                                           precisions: try ScoreBenchmark.precisions(dtype), prefix: prefix)
        }
    }

    func run() throws {
        let settings = try settings()
        try BenchCommand.report { emit in
            try ScoreBenchmark(model: ModelLoader.load(path: model).model, settings).run(emit: emit)
        }
    }
}
