import Foundation
import ModelFiles
import Tokenizer
import Transformer

/// Glue between a loaded model's tokenizer and the data formats of the commands: which tokenizer and
/// text rule a model has, which tokens end its responses, and how a trained model is saved with its
/// tokenizer files.
public enum TextEncoding {
    /// Files a Hugging Face checkpoint carries besides weights and config.
    public static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]

    /// The model's tokenizer, or nil when the model has none (a GGUF without `tokenizer.ggml.*`
    /// metadata, a folder without tokenizer.json).
    public static func tokenizer(for loaded: LoadedModel) throws -> BPETokenizer? {
        switch loaded.source {
        case let .gguf(file):
            guard file.metadata["tokenizer.ggml.model"] != nil else { return nil }
            return try BPETokenizer(gguf: file)
        case let .huggingFace(folder):
            guard FileManager.default.fileExists(atPath: folder + "/tokenizer.json") else { return nil }
            return try BPETokenizer(huggingFaceFolder: folder)
        }
    }

    /// The text rule of the model (`PromptResponseEncoder`), or nil when the model has no tokenizer.
    public static func promptResponseEncoder(for loaded: LoadedModel, chatTemplateFile: String? = nil) throws -> PromptResponseEncoder? {
        guard let tokenizer = try tokenizer(for: loaded) else { return nil }
        return try PromptResponseEncoder(tokenizer: tokenizer, chatTemplateFile: chatTemplateFile)
    }

    /// The encoder for text and chat records, or nil when the model has no tokenizer.
    public static func encoder(for loaded: LoadedModel, chatTemplateFile: String? = nil) throws -> RecordEncoder? {
        try promptResponseEncoder(for: loaded, chatTemplateFile: chatTemplateFile).map(TokenizerRecordEncoder.init)
    }

    /// The tokens that end a response of `model` (`PromptResponseEncoder.endTokens`: EOS and the chat
    /// template's end-of-turn token); the model's EOS ids alone when it has no tokenizer.
    public static func endTokens(of model: LlamaModel, encoder: PromptResponseEncoder?) -> Set<Int32> {
        encoder?.endTokens(modelEOS: model.config.eosTokenIds) ?? Set(model.config.eosTokenIds.map(Int32.init))
    }

    /// Saves a trained model (adapters merged) in Hugging Face layout with the tokenizer files of the
    /// model it started from: the final model of `sft` and `ppo`.
    public static func saveModel(_ model: LlamaModel, tokenizerOf loaded: LoadedModel, to folder: String) throws {
        try HuggingFaceExport.save(model.mergingAdapters(), to: folder)
        try writeTokenizerFiles(for: loaded, to: folder)
    }

    /// Writes the model's tokenizer files into a checkpoint folder: copied from a Hugging Face
    /// source, written from the metadata of a GGUF source.
    public static func writeTokenizerFiles(for loaded: LoadedModel, to folder: String) throws {
        guard case let .huggingFace(source) = loaded.source else {
            try tokenizer(for: loaded)?.writeHuggingFaceFiles(to: folder)
            return
        }
        for name in tokenizerFiles {
            let from = source + "/" + name
            guard let data = FileManager.default.contents(atPath: from) else { continue }
            try data.write(to: URL(fileURLWithPath: folder + "/" + name), options: .atomic)
        }
    }
}

/// Data records to ids by `PromptResponseEncoder.encodePair`'s rule (shared with srppod). A `messages`
/// record without `response` takes its final assistant message as the response. A record the rule
/// cannot encode throws its `PromptResponseEncoder.RecordProblem`.
public struct TokenizerRecordEncoder: RecordEncoder {
    public let encoder: PromptResponseEncoder

    public init(encoder: PromptResponseEncoder) { self.encoder = encoder }

    public func encodePrompt(_ record: DataRecord) throws -> [Int32] {
        try encoder.encodeRecordPrompt(prompt: record.prompt, messages: record.messages, response: record.response)
    }

    public func encodeResponse(_ record: DataRecord) throws -> [Int32] {
        try encoder.encodeRecordResponse(messages: record.messages, response: record.response)
    }
}
