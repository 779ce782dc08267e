import ArgumentParser
import Foundation
import ModelFiles
import Tensor
import Tokenizer
import Training
import Transformer

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample continuations of prompts (batched, with a KV cache).",
        discussion: """
        Input is JSONL, one prompt per line: {"prompt_ids":[…]}, or with a tokenizer {"prompt":"…"} \
        or chat {"messages":[…]} (rendered with the model's chat template, ending with the assistant \
        turn's opening). A line may carry its own "seed"; otherwise line i (from 0) uses --seed + i. \
        A seed fixes a line's output whatever else is in the file or the batch.

        Output is one JSONL line per input line, in order: {"ids":[…],"logprobs":[…], \
        "raw_logprobs":[…],"finish_reason":…,"seed":…,"n":…} and "text" when the model has a \
        tokenizer. logprobs[i] is the log-probability of ids[i] under the sampling distribution \
        (after temperature and truncation; 0 when greedy), raw_logprobs[i] under the model itself \
        (temperature 1, nothing truncated: what `srppo score` gives). finish_reason is "eos" (an end \
        token — the model's EOS or its chat template's end-of-turn token — kept as the last id), "stop" (a --stop string or --stop-ids sequence, kept) or "length".

        With --stream (one prompt), the text is printed as it is generated; --output still receives \
        the JSON line.

        Examples:
          echo '{"prompt_ids":[1,9690,198]}' | srppo generate --model SmolLM2-135M-Instruct.Q4_1.gguf --greedy
          srppo generate --model SmolLM2.gguf --input prompts.jsonl --output out.jsonl \\
                         --temperature 0.8 --top-p 0.95 --max-new-tokens 256 --batch-size 8
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Input JSONL file (default: standard input).")
    var input: String?

    @Option(help: "Output JSONL file (default: standard output).")
    var output: String?

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Double = 1

    @Flag(help: "Greedy decoding (the same as --temperature 0).")
    var greedy = false

    @Option(help: "Keep only the K most probable tokens (0: off).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling: keep the most probable tokens up to this probability mass (1: off).")
    var topP: Double = 1

    @Option(help: "Drop tokens less probable than this fraction of the most probable one (0: off).")
    var minP: Double = 0

    @Option(help: "Seed of line 0; line i uses seed + i unless it has its own \"seed\".")
    var seed: UInt64 = 0

    @Option(help: "Most new tokens per prompt.")
    var maxNewTokens: Int = 256

    @Option(help: "Stop when the text contains this string (repeatable; needs a tokenizer).")
    var stop: [String] = []

    @Option(help: "Stop after this token-id sequence, comma-separated (repeatable).")
    var stopIds: [String] = []

    @Flag(help: "Do not stop at the model's end tokens (EOS and the chat template's end-of-turn).")
    var ignoreEos = false

    @Option(help: "Sequences decoded together.")
    var batchSize: Int = 8

    @Flag(help: "Print the text of the one prompt as it is generated.")
    var stream = false

    @Option(help: "Chat template file for \"messages\" lines (default: the model's own).")
    var chatTemplate: String?

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard maxNewTokens >= 0 else { throw ValidationError("--max-new-tokens must not be negative") }
        if stop.contains(where: \.isEmpty) { throw ValidationError("--stop needs a non-empty string") }
        for ids in stopIds where parseIds(ids) == nil {
            throw ValidationError("--stop-ids needs comma-separated token ids, got \"\(ids)\"")
        }
        do { try sampling.validate() } catch { throw ValidationError("\(error)") }
    }

    private var sampling: SamplingParameters {
        SamplingParameters(temperature: greedy ? 0 : temperature, topK: topK, topP: topP, minP: minP)
    }

    private func parseIds(_ text: String) -> [Int32]? {
        let ids = text.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        return ids.isEmpty || ids.contains(nil) ? nil : ids.compactMap { $0 }
    }

    func run() throws {
        threading.apply()
        try CLI.orExit {
            let loaded = try ModelLoader.load(path: model)
            let tokenizer = try GenerationText.load(for: loaded, chatTemplateFile: chatTemplate)
            if !stop.isEmpty && tokenizer == nil {
                throw CLI.Failure(description: "--stop needs a tokenizer to see text, and this model has none: use --stop-ids")
            }
            let endTokens = ignoreEos ? [] : TextEncoding.endTokens(of: loaded.model, encoder: tokenizer?.promptResponseEncoder)
            let requests = try readRequests(config: loaded.model.config, encoder: tokenizer?.encoder, endTokens: endTokens)
            if stream && requests.count != 1 {
                throw CLI.Failure(description: "--stream prints one generation: the input has \(requests.count) prompts")
            }
            var texts = requests.map { _ in tokenizer.map { SequenceText(decoder: $0.decoder(), stops: stop) } }
            var streamedIds = 0
            let results = try Generator(model: loaded.model, maxBatch: batchSize).generate(requests) { i, token in
                guard texts[i] != nil else {
                    if stream { Self.print((streamedIds == 0 ? "" : " ") + "\(token)") }
                    streamedIds += 1
                    return false
                }
                let stopped = texts[i]!.append(token)
                if stream { Self.print(texts[i]!.unprinted(final: stopped)) }
                return stopped
            }
            if stream {
                Self.print((texts[0]?.unprinted(final: true) ?? "") + "\n")
                if output == nil { return }
            }
            let out = try JSONLines.Writer(path: output)
            for (i, (request, result)) in zip(requests, results).enumerated() {
                var record: [String: Any] = [
                    "ids": result.tokens.map(Int.init), "logprobs": result.logProbs.map(Double.init),
                    "raw_logprobs": result.rawLogProbs.map(Double.init), "finish_reason": result.finishReason.rawValue,
                    "seed": request.seed, "n": result.tokens.count,
                ]
                if let text = texts[i]?.final() { record["text"] = text }
                try out.write(record)
            }
        }
    }

    private func readRequests(config: LlamaConfig, encoder: RecordEncoder?, endTokens: Set<Int32>) throws -> [GenerationRequest] {
        let stopSequences = stopIds.compactMap(parseIds)
        return try JSONLines.read(input).enumerated().map { index, line in
            let record = try line.decode(DataRecord.self)
            let options = try line.decode(LineOptions.self)
            let prompt: [Int32]
            if let ids = record.promptIDs {
                prompt = ids
            } else {
                guard record.prompt != nil || record.messages != nil else {
                    throw line.error("missing field: needs \"prompt_ids\", \"prompt\" or \"messages\"")
                }
                guard let encoder else { throw line.error("text prompts need a tokenizer, and this model has none: use \"prompt_ids\"") }
                do { prompt = try encoder.encodePrompt(record) } catch { throw line.error("\(error)") }
            }
            let request = GenerationRequest(prompt: prompt, maxNewTokens: maxNewTokens, sampling: sampling,
                                            seed: options.seed ?? seed &+ UInt64(index), endTokens: endTokens,
                                            stopSequences: stopSequences)
            do { try request.validate(for: config) } catch { throw line.error("\(error)") }
            return request
        }
    }

    /// Per-line settings besides the prompt.
    private struct LineOptions: Decodable {
        var seed: UInt64?

        enum CodingKeys: String, CodingKey { case seed }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            guard c.contains(.seed) else { return }
            guard let value = try? c.decode(UInt64.self, forKey: .seed) else {
                throw DecodingError.typeMismatch(UInt64.self, .init(codingPath: [CodingKeys.seed],
                                                                    debugDescription: "a seed is a whole number from 0 to \(UInt64.max)"))
            }
            seed = value
        }
    }

    private static func print(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

/// What generation needs from a model's tokenizer: prompt tokens from text records, and text from
/// generated tokens, streamed.
struct GenerationText {
    let promptResponseEncoder: PromptResponseEncoder
    var encoder: RecordEncoder { TokenizerRecordEncoder(encoder: promptResponseEncoder) }
    var tokenizer: BPETokenizer { promptResponseEncoder.tokenizer }

    func decoder() -> StreamingDecoder { tokenizer.streamingDecoder() }

    /// The model's tokenizer, or nil when it has none (generation then works on token ids).
    static func load(for loaded: LoadedModel, chatTemplateFile: String?) throws -> GenerationText? {
        try TextEncoding.promptResponseEncoder(for: loaded, chatTemplateFile: chatTemplateFile).map(GenerationText.init)
    }
}

/// One sequence's text as its tokens arrive: cut before the first --stop string, and streamed
/// without ever printing text that a stop string could still claim.
struct SequenceText {
    private var decoder: StreamingDecoder
    private let stops: [String]
    private var text = ""
    private var flushed = false
    /// Where the first stop string starts, once one has appeared.
    private var cut: String.Index?
    /// UTF-8 bytes of `text` already handed out by `unprinted`.
    private var printed = 0

    init(decoder: StreamingDecoder, stops: [String]) {
        self.decoder = decoder
        self.stops = stops
    }

    /// Adds a token's text; returns true when a stop string has appeared.
    mutating func append(_ token: Int32) -> Bool {
        text += decoder.append(token)
        cut = stops.compactMap { text.range(of: $0)?.lowerBound }.min()
        return cut != nil
    }

    /// The text not yet handed out that is safe to show: when the sequence is over, all of it up
    /// to the cut; before, all but the last characters that a stop string could still begin with.
    mutating func unprinted(final: Bool) -> String {
        if final { flush() }
        var end = cut ?? text.endIndex
        if !final, cut == nil, let longest = stops.map(\.count).max() {
            end = text.index(text.endIndex, offsetBy: -(longest - 1), limitedBy: text.startIndex) ?? text.startIndex
        }
        let start = text.utf8.index(text.startIndex, offsetBy: printed)
        guard start < end else { return "" }
        printed = text.utf8.distance(from: text.startIndex, to: end)
        return String(text[start..<end])
    }

    /// The whole text, cut before the stop string if one appeared.
    mutating func final() -> String {
        flush()
        return cut.map { String(text[..<$0]) } ?? text
    }

    private mutating func flush() {
        if flushed || cut != nil { return }
        flushed = true
        text += decoder.finish()
    }
}
