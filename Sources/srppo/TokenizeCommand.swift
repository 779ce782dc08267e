import ArgumentParser
import Foundation
import ModelFiles
import Tokenizer

/// `srppo tokenize`: text to token ids and back with a model's own tokenizer.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Text to token ids and back, with the model's tokenizer (identical to Hugging Face).",
        discussion: """
        Input (stdin when no --input) is one text per line; output is one JSONL line per input line: \
        {"ids":[…]}. Special tokens written in the text (<|im_end|>) become their ids; no BOS or EOS \
        is added.

        With --jsonl each input line is a JSON object instead: {"text":"…"} (texts may then hold \
        newlines), or {"messages":[{"role":…,"content":…},…],"add_generation_prompt":true|false} \
        rendered with the model's chat template (or --chat-template FILE); the output then also \
        holds the rendered "text".

        With --decode each input line is {"ids":[…]} and the output {"text":"…"}, decoded as \
        Hugging Face decodes (ill-formed UTF-8 becomes U+FFFD).

        --write-hf-tokenizer DIR writes tokenizer.json, tokenizer_config.json and \
        special_tokens_map.json for the model into DIR (created if needed) and reads no input.

        Examples:
          echo 'Hello world' | srppo tokenize --model SmolLM2.gguf
          echo '{"ids":[19556,905]}' | srppo tokenize --model SmolLM2.gguf --decode
          echo '{"messages":[{"role":"user","content":"Hi"}]}' \\
            | srppo tokenize --model SmolLM2.gguf --jsonl
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Input file (default: standard input).")
    var input: String?

    @Option(help: "Output JSONL file (default: standard output).")
    var output: String?

    @Flag(help: "Input lines are JSON objects with \"text\" or \"messages\".")
    var jsonl = false

    @Flag(help: "Token ids to text: input lines are {\"ids\":[…]}.")
    var decode = false

    @Flag(help: "With --decode, leave special tokens out of the text.")
    var skipSpecialTokens = false

    @Option(help: "Jinja chat template file to use instead of the model's own.")
    var chatTemplate: String?

    @Option(name: .customLong("write-hf-tokenizer"), help: "Write the tokenizer as Hugging Face files into this folder and exit.")
    var huggingFaceFolder: String?

    func validate() throws {
        if decode && jsonl { throw ValidationError("--decode reads {\"ids\":[…]} lines; leave out --jsonl") }
        if skipSpecialTokens && !decode { throw ValidationError("--skip-special-tokens applies to --decode only") }
    }

    func run() throws {
        try CLI.orExit {
            let tokenizer = try BPETokenizer(modelPath: model)
            if let huggingFaceFolder {
                try FileManager.default.createDirectory(atPath: huggingFaceFolder, withIntermediateDirectories: true)
                try tokenizer.writeHuggingFaceFiles(to: huggingFaceFolder)
                return
            }
            let out = try JSONLines.Writer(path: output)
            if decode {
                for line in try JSONLines.read(input) {
                    let ids = try line.decode(DecodeInput.self).ids
                    if let bad = ids.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                        throw line.error("token id \(bad) is outside the vocabulary (0..<\(tokenizer.vocabularySize))")
                    }
                    try out.write(["text": tokenizer.decode(ids, skippingSpecialTokens: skipSpecialTokens)])
                }
            } else if jsonl {
                let encoder = try PromptResponseEncoder(tokenizer: tokenizer, chatTemplateFile: chatTemplate)
                for line in try JSONLines.read(input) {
                    let record = try line.decode(EncodeInput.self)
                    switch (record.text, record.messages) {
                    case let (text?, nil):
                        out.write(key: "ids", integers: tokenizer.encode(text))
                    case let (nil, messages?):
                        let rendered = try encoder.chatTemplate().render(messages, addGenerationPrompt: record.addGenerationPrompt ?? false)
                        try out.write(["ids": tokenizer.encode(rendered).map(Int.init), "text": rendered])
                    default:
                        throw line.error("needs exactly one of \"text\" and \"messages\"")
                    }
                }
            } else {
                for line in try JSONLines.read(input, keepingBlankLines: true) {
                    guard let text = String(validating: line.data, as: UTF8.self) else { throw line.error("not valid UTF-8") }
                    out.write(key: "ids", integers: tokenizer.encode(text))
                }
            }
        }
    }
}

private struct DecodeInput: Decodable {
    var ids: [Int32]
}

private struct EncodeInput: Decodable {
    var text: String?
    var messages: [ChatMessage]?
    var addGenerationPrompt: Bool?

    enum CodingKeys: String, CodingKey {
        case text, messages, addGenerationPrompt = "add_generation_prompt"
    }
}
