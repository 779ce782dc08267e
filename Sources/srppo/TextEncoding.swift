import Foundation
import Training
import Transformer

/// Glue between a loaded model's tokenizer and the data formats of the commands.
enum TextEncoding {
    /// Files a Hugging Face checkpoint carries besides weights and config.
    static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]

    /// The encoder for text and chat records, or nil when the model has no tokenizer.
    static func encoder(for loaded: LoadedModel) throws -> RecordEncoder? {
        nil
    }

    /// Writes the model's tokenizer files into a checkpoint folder (copied from a Hugging Face source).
    static func writeTokenizerFiles(for loaded: LoadedModel, to folder: String) throws {
        guard case let .huggingFace(source) = loaded.source else { return }
        for name in tokenizerFiles {
            let from = source + "/" + name
            guard let data = FileManager.default.contents(atPath: from) else { continue }
            try data.write(to: URL(fileURLWithPath: folder + "/" + name), options: .atomic)
        }
    }
}
