import ArgumentParser
import Foundation
import ModelFiles
import Compute
import Training
import Transformer

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Per-token log-probs of responses under one model.",
        discussion: """
        Input is JSONL, one pair per line, in any of these forms:
          {"prompt_ids":[…],"response_ids":[…]}  token ids, scored as given
          {"prompt":"…","response":"…"}          plain text
          {"messages":[…],"response":"…"}        chat
        Text is encoded with the model's tokenizer, prompt and response apart:
          plain: prompt_ids = encode(prompt), after BOS if the model adds one;
                 response_ids = encode(response) + [EOS]
          chat:  prompt_ids = encode(chat template of the messages, with the
                 assistant generation prompt); response_ids =
                 encode(response) + [the template's end-of-turn token],
                 e.g. <|im_end|> for ChatML, <|eot_id|> for LLaMA-3
        A "messages" line without "response" takes its final assistant
        message as the response. The chat template is the model's own, or
        --chat-template FILE. Output is one JSONL line per input line:
        {"logprobs":[…],"sum":…,"n":…}, where logprobs[i] is
        log p(response_ids[i] | prompt, response_ids[<i]).

        --dtype bf16 multiplies bf16 copies of the weights (AVX-512 BF16 when
        the CPU has it, else portable C; fp32 sums): about twice as fast, and
        the log-probs move slightly. Measured on SmolLM2-135M over a text
        chat corpus (BENCHMARKS.md, "bf16 scoring"): per-token |Δ| mean 0.014,
        max 0.12 nats; per-response sum |Δ| mean 0.11, max 0.28. Use f32 (the
        default) where results must match training or the daemon bit for bit.
        --share-prefixes runs a prompt shared by several lines of one batch
        once (its keys/values reused); fp32 results equal unshared scoring up
        to float rounding (~1e-5), not bit for bit (bf16: within its own noise).

        Examples:
          echo '{"prompt_ids":[1,2,3],"response_ids":[4,5]}' \\
            | srppo score --model SmolLM2.gguf
          echo '{"messages":[{"role":"user","content":"Hi"}],"response":"Hi!"}' \\
            | srppo score --model SmolLM2.gguf
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Input JSONL file (default: standard input).")
    var input: String?

    @Option(help: "Output JSONL file (default: standard output).")
    var output: String?

    @Option(help: "Jinja chat template file for \"messages\" input, instead of the model's own.")
    var chatTemplate: String?

    @OptionGroup var threading: ThreadOptions

    @Option(help: "Sequences scored together in one forward pass.")
    var batchSize: Int = 8

    @Option(help: "Weight precision: f32 (exact reference) or bf16 (faster, slightly different log-probs).")
    var dtype: String = "f32"

    @Flag(help: "Compute a prompt shared by several lines of a batch once.")
    var sharePrefixes = false

    func validate() throws {
        guard WeightPrecision(rawValue: dtype) != nil else {
            throw ValidationError("--dtype must be f32 or bf16, got \"\(dtype)\"")
        }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        threading.apply()
        let loaded = try CLI.orExit { try ModelLoader.load(path: model) }
        loaded.model.weightPrecision = WeightPrecision(rawValue: dtype)!
        try Self.score(with: loaded.model, input: input, output: output, batchSize: batchSize,
                       sharePrefixes: sharePrefixes) {
            try TextEncoding.encoder(for: loaded, chatTemplateFile: chatTemplate)
        }
    }

    /// Scores the JSONL pairs of `input` (stdin when nil) with `model`, one output line per input line.
    /// `textEncoder` is called once if some line is text. Shared with `srppo image attach`, which
    /// scores with an attached weight image.
    static func score(with model: LlamaModel, input: String?, output: String?, batchSize: Int,
                      sharePrefixes: Bool = false, textEncoder: () throws -> RecordEncoder? = { nil }) throws {
        let lines = try CLI.orExit { try JSONLines.read(input) }
        let requests = try CLI.orExit { try ScoreInput.requests(lines, textEncoder: textEncoder) }
        let out = try CLI.orExit { try JSONLines.Writer(path: output) }
        var start = 0
        while start < requests.count {
            let batch = Array(requests[start..<min(start + batchSize, requests.count)])
            let results = try CLI.orExit { try model.logProbs(batch, sharePrefixes: sharePrefixes) }
            for logprobs in results {
                let sum = logprobs.reduce(Double(0)) { $0 + Double($1) }
                try out.write(["logprobs": logprobs.map(Double.init), "sum": sum, "n": logprobs.count])
            }
            start += batch.count
        }
    }
}
