import Foundation
import ModelFiles

extension BPETokenizer {
    /// The tokenizer in a GGUF file's metadata.
    public convenience init(gguf: GGUFFile) throws {
        try self.init(definition: TokenizerDefinition(gguf: gguf))
    }

    /// The tokenizer of a Hugging Face model folder (tokenizer.json, tokenizer_config.json).
    public convenience init(huggingFaceFolder folder: String) throws {
        try self.init(definition: TokenizerDefinition(huggingFaceFolder: folder))
    }

    /// The tokenizer of a model given as the command line does: a GGUF file, a Hugging Face model
    /// folder, or a safetensors file (whose folder holds the tokenizer files).
    public convenience init(modelPath path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.cannotRead(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            try self.init(huggingFaceFolder: path)
        } else if path.hasSuffix(".safetensors") {
            let folder = (path as NSString).deletingLastPathComponent
            try self.init(huggingFaceFolder: folder.isEmpty ? "." : folder)
        } else {
            try self.init(gguf: GGUFFile(path: path))
        }
    }
}
