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
                try dumpTensor(named: dump, to: output)
            } else {
                try printSummary()
            }
        }
    }

    private func printSummary() throws {
        var summary: [String: Any] = ["path": path]
        if path.hasSuffix(".gguf") {
            let file = try GGUFFile(path: path)
            summary["format"] = "gguf"
            summary["gguf_version"] = Int(file.version)
            summary["metadata_keys"] = file.metadataKeys.count
            summary["tensors"] = file.tensors.map { ["name": $0.name, "type": $0.type.description, "shape": $0.shape] as [String: Any] }
        } else {
            let file = try SafetensorsFile(path: path.hasSuffix(".safetensors") ? path : (path as NSString).appendingPathComponent("model.safetensors"))
            summary["format"] = "safetensors"
            summary["tensors"] = file.tensorNames.map { n in
                let t = file.tensors[n]!
                return ["name": n, "type": t.dtype.rawValue, "shape": t.shape] as [String: Any]
            }
        }
        let model = try ModelLoader.load(path: path).model
        let config = try JSONSerialization.jsonObject(with: model.config.huggingFaceJSON())
        summary["config"] = config
        summary["parameters"] = model.layout.tensors.reduce(0) { $0 + $1.count }
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .withoutEscapingSlashes])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    private func dumpTensor(named name: String, to output: String) throws {
        let values: [Float]
        if path.hasSuffix(".gguf") {
            let file = try GGUFFile(path: path)
            guard let info = file.tensor(named: name) else { throw ModelFileError.missingTensor(path: path, tensor: name) }
            values = try file.dequantize(info)
        } else {
            let file = try SafetensorsFile(path: path)
            guard let info = file.tensors[name] else { throw ModelFileError.missingTensor(path: path, tensor: name) }
            values = try file.read(info)
        }
        try AtomicFile.write(values.withUnsafeBytes { Data($0) }, to: output)
    }
}
