import Dispatch
import ModelFiles
import Tokenizer

/// `bench tokenize`: encode and decode throughput of the tokenizer on one thread, in MB/s of UTF-8.
public struct TokenizeBenchmark {
    /// A GGUF file, a safetensors file or a Hugging Face model folder (its tokenizer is loaded, timed).
    public let model: String
    /// JSONL, one {"text":"…"} per line; each text is encoded on its own, as prompts are.
    public let input: String
    /// Timed passes over all texts (after one untimed pass).
    public let repeats: Int

    public init(model: String, input: String, repeats: Int) {
        self.model = model
        self.input = input
        self.repeats = repeats
    }

    /// One line: medians (and min, max) of MB/s over the repeats, the counts and the load time.
    public func run(emit: Emit) throws {
        let loadStart = DispatchTime.now()
        let tokenizer = try BPETokenizer(modelPath: model)
        let loadSeconds = Bench.seconds(from: loadStart)
        let texts = try JSONLines.read(input).map { try $0.decode(BenchText.self).text }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        guard bytes > 0 else { throw BenchmarkError("\(input): no text to tokenize") }

        var encoded = texts.map(tokenizer.encode)
        let tokens = encoded.reduce(0) { $0 + $1.count }
        var encodeRates: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now()
            encoded = texts.map(tokenizer.encode)
            encodeRates.append(Double(bytes) / Bench.seconds(from: start) / 1e6)
        }
        var decodeRates: [Double] = []
        var decodedBytes = 0
        for _ in 0..<repeats {
            let start = DispatchTime.now()
            decodedBytes = encoded.reduce(0) { $0 + tokenizer.decode($1).utf8.count }
            decodeRates.append(Double(decodedBytes) / Bench.seconds(from: start) / 1e6)
        }
        try emit([
            "bench": "tokenize", "model": model, "input": input, "threads": 1, "repeats": repeats,
            "texts": texts.count, "bytes": bytes, "tokens": tokens, "decoded_bytes": decodedBytes,
            "load_seconds": loadSeconds,
            "encode_mb_per_s": Self.summary(encodeRates), "decode_mb_per_s": Self.summary(decodeRates),
        ])
    }

    private static func summary(_ values: [Double]) -> [String: Double] {
        ["median": Bench.median(values), "min": values.min()!, "max": values.max()!]
    }
}

private struct BenchText: Decodable {
    var text: String
}
