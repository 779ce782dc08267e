import ArgumentParser
import Dispatch
import Foundation
import ModelFiles
import Tokenizer

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
        try CLI.orExit {
            let loadStart = DispatchTime.now()
            let tokenizer = try BPETokenizer(modelPath: model)
            let loadSeconds = Self.seconds(since: loadStart)
            let texts = try JSONLines.read(input).map { try $0.decode(BenchText.self).text }
            let bytes = texts.reduce(0) { $0 + $1.utf8.count }
            guard bytes > 0 else { throw CLI.Failure(description: "\(input): no text to tokenize") }

            var encoded = texts.map(tokenizer.encode)
            let tokens = encoded.reduce(0) { $0 + $1.count }
            var encodeRates: [Double] = []
            for _ in 0..<repeats {
                let start = DispatchTime.now()
                encoded = texts.map(tokenizer.encode)
                encodeRates.append(Double(bytes) / Self.seconds(since: start) / 1e6)
            }
            var decodeRates: [Double] = []
            var decodedBytes = 0
            for _ in 0..<repeats {
                let start = DispatchTime.now()
                decodedBytes = encoded.reduce(0) { $0 + tokenizer.decode($1).utf8.count }
                decodeRates.append(Double(decodedBytes) / Self.seconds(since: start) / 1e6)
            }
            try JSONLines.Writer(path: nil).write([
                "bench": "tokenize", "model": model, "input": input, "threads": 1, "repeats": repeats,
                "texts": texts.count, "bytes": bytes, "tokens": tokens, "decoded_bytes": decodedBytes,
                "load_seconds": loadSeconds,
                "encode_mb_per_s": Self.summary(encodeRates), "decode_mb_per_s": Self.summary(decodeRates),
            ])
        }
    }

    private static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    private static func summary(_ values: [Double]) -> [String: Double] {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        return ["median": median, "min": sorted.first!, "max": sorted.last!]
    }
}

private struct BenchText: Decodable {
    var text: String
}
