import ArgumentParser
import Foundation
import ModelFiles
import Transformer

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model file's format, architecture and tensors; dump a tensor's values.",
        discussion: """
        Prints one JSON object: the file format, the engine's view of the architecture (config) and
        the tensor table as stored (name, type, shape). With --dump, writes the named tensor's values,
        dequantized, as little-endian float32 to --output.

        Examples:
          srppo inspect SmolLM2-135M-Instruct.Q4_1.gguf
          srppo inspect model.gguf --dump blk.0.attn_q.weight --output q.f32
        """
    )

    @Argument(help: "A GGUF file, a safetensors file or a Hugging Face model folder.")
    var path: String

    @Option(help: "Name of a tensor (as stored in the file) to write as float32.")
    var dump: String?

    @Option(help: "Where --dump writes the values.")
    var output: String?

    func validate() throws {
        if dump != nil && output == nil { throw ValidationError("--dump needs --output") }
    }

    func run() throws {
        try CLI.orExit {
            if let dump, let output {
                let values = try ModelInspection.values(ofTensor: dump, path: path)
                try AtomicFile.write(values.withUnsafeBytes { Data($0) }, to: output)
            } else {
                let data = try JSONSerialization.data(withJSONObject: ModelInspection.summary(path: path), options: [.sortedKeys, .withoutEscapingSlashes])
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
        }
    }
}
