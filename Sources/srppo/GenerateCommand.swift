import ArgumentParser
import Foundation
import ModelFiles
import Compute
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
            let requests = try GenerationInput.requests(JSONLines.read(input), config: loaded.model.config, encoder: tokenizer?.encoder,
                                                        maxNewTokens: maxNewTokens, sampling: sampling, firstSeed: seed,
                                                        endTokens: endTokens, stopSequences: stopIds.compactMap(parseIds))
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

    private static func print(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
