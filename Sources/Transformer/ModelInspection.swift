import Foundation
import ModelFiles

/// `srppo inspect`: what a model file holds, as stored and as the engine sees it.
public enum ModelInspection {
    /// A JSON object: the path, the file format, the tensor table as stored (name, type, shape), the
    /// engine's view of the architecture (config) and its parameter count.
    public static func summary(path: String) throws -> [String: Any] {
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
        summary["config"] = try JSONSerialization.jsonObject(with: model.config.huggingFaceJSON())
        summary["parameters"] = model.layout.tensors.reduce(0) { $0 + $1.count }
        return summary
    }

    /// The values of the tensor `name` (as stored in the GGUF or safetensors file at `path`), dequantized.
    public static func values(ofTensor name: String, path: String) throws -> [Float] {
        if path.hasSuffix(".gguf") {
            let file = try GGUFFile(path: path)
            guard let info = file.tensor(named: name) else { throw ModelFileError.missingTensor(path: path, tensor: name) }
            return try file.dequantize(info)
        }
        let file = try SafetensorsFile(path: path)
        guard let info = file.tensors[name] else { throw ModelFileError.missingTensor(path: path, tensor: name) }
        return try file.read(info)
    }
}
