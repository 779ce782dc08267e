import ArgumentParser
import Benchmarks

/// `srppo bench tokenize`: encode and decode throughput of the tokenizer on one thread.
struct BenchTokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenizer throughput on one thread: MB/s of UTF-8 text encoded and decoded.",
        discussion: """
        Input is JSONL, one {"text":"…"} per line; each text is encoded on its own (as prompts are), \
        --repeats times, and the token lists decoded back. Prints one JSON line with medians (and \
        min, max) of MB/s over the repeats, the byte, text and token counts and the load time. \
        scripts/bench_tokenize.py builds English, code and multilingual inputs and runs this beside \
        Hugging Face `tokenizers` on the same texts (see BENCHMARKS.md).

        Example:
          srppo bench tokenize --model SmolLM2.gguf --input texts.jsonl --repeats 7
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "JSONL file of {\"text\":…} lines.")
    var input: String

    @Option(help: "Timed passes over all texts (after one untimed pass).")
    var repeats: Int = 5

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        try BenchCommand.report(TokenizeBenchmark(model: model, input: input, repeats: repeats).run)
    }
}
