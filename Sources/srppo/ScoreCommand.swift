import ArgumentParser
import Foundation
import Tensor
import Transformer

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Per-token log-probs of responses under one model.",
        discussion: """
        Input is JSONL, one pair per line: {"prompt_ids":[…],"response_ids":[…]}. Output is one JSONL
        line per input line: {"logprobs":[…],"sum":…,"n":…}, where logprobs[i] is
        log p(response_ids[i] | prompt, response_ids[<i]).

        Example:
          echo '{"prompt_ids":[1,2,3],"response_ids":[4,5]}' | srppo score --model SmolLM2.gguf
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Input JSONL file (default: standard input).")
    var input: String?

    @Option(help: "Output JSONL file (default: standard output).")
    var output: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(help: "Sequences scored together in one forward pass.")
    var batchSize: Int = 8

    func run() throws {
        if let threads { Parallel.threads = threads }
        let loaded = try CLI.orExit { try ModelLoader.load(path: model) }
        try Self.score(with: loaded.model, input: input, output: output, batchSize: batchSize)
    }

    /// Scores the JSONL pairs of `input` (stdin when nil) with `model`, one output line per input line.
    /// Shared with `srppo image attach`, which scores with an attached weight image.
    static func score(with model: LlamaModel, input: String?, output: String?, batchSize: Int) throws {
        let lines = try CLI.orExit { try JSONLines.read(input) }
        var requests: [ScoringRequest] = []
        for line in lines {
            let pair = try CLI.orExit { try ScoreInput.parse(line) }
            requests.append(ScoringRequest(prompt: pair.promptIDs, response: pair.responseIDs))
        }
        let out = try CLI.orExit { try JSONLines.Writer(path: output) }
        var start = 0
        while start < requests.count {
            let batch = Array(requests[start..<min(start + batchSize, requests.count)])
            let results = try CLI.orExit { try model.logProbs(batch) }
            for logprobs in results {
                let sum = logprobs.reduce(Double(0)) { $0 + Double($1) }
                try out.write(["logprobs": logprobs.map(Double.init), "sum": sum, "n": logprobs.count])
            }
            start += batch.count
        }
    }
}

/// One line of `score` input.
struct ScoreInput: Decodable {
    var promptIDs: [Int32]
    var responseIDs: [Int32]

    enum CodingKeys: String, CodingKey {
        case promptIDs = "prompt_ids", responseIDs = "response_ids"
    }

    static func parse(_ line: JSONLines.Line) throws -> ScoreInput {
        let input = try line.decode(ScoreInput.self)
        guard !input.promptIDs.isEmpty else { throw line.error("\"prompt_ids\" is empty: at least one context token is needed") }
        if let bad = (input.promptIDs + input.responseIDs).first(where: { $0 < 0 }) {
            throw line.error("token id \(bad) is negative")
        }
        return input
    }
}
