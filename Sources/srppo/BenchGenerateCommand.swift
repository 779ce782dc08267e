import ArgumentParser
import Benchmarks
import Transformer

/// `srppo bench generate`: sampling throughput with the KV cache, one batch size at a time.
struct BenchGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sampling throughput (tokens/s) at several batch sizes.",
        discussion: """
        For each batch size B, generates --new-tokens tokens for each of B prompts of --prompt-tokens \
        random token ids (end tokens ignored, so every sequence runs to full length), --repeats times. \
        One JSON line per batch size with medians: seconds for the whole call (prefill + decode), \
        generated tokens/s (B × new tokens / seconds), prefill seconds (a call generating one token), \
        decode tokens/s (B × (new tokens − 1) / (seconds − prefill seconds)) and ms per decoding step; \
        then one line comparing the largest batch with batch 1.

        Example:
          srppo bench generate --model SmolLM2-135M-Instruct.Q4_1.gguf --threads 2 --batch-sizes 1,8
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Comma-separated batch sizes.")
    var batchSizes: String = "1,8"

    @Option(help: "Prompt length in tokens.")
    var promptTokens: Int = 64

    @Option(help: "New tokens per sequence.")
    var newTokens: Int = 128

    @Option(help: "Timed runs per batch size (after one warm-up run).")
    var repeats: Int = 5

    @Option(help: "Sampling temperature (0: greedy).")
    var temperature: Double = 1

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard promptTokens >= 1, newTokens >= 2 else { throw ValidationError("--prompt-tokens must be at least 1 and --new-tokens at least 2") }
        let sizes = BenchCommand.integers(batchSizes)
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--batch-sizes must be a comma-separated list of positive integers, got \"\(batchSizes)\"")
        }
    }

    func run() throws {
        threading.apply()
        let settings = GenerateBenchmark.Settings(batchSizes: BenchCommand.integers(batchSizes), promptTokens: promptTokens,
                                                  newTokens: newTokens, repeats: repeats, temperature: temperature)
        try BenchCommand.report { emit in
            try GenerateBenchmark(model: ModelLoader.load(path: model).model, settings).run(emit: emit)
        }
    }
}
