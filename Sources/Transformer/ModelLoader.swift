import Foundation
import ModelFiles
import Compute

/// Where a model was loaded from; the tokenizer is read from the same place.
public enum ModelSource {
    case gguf(GGUFFile)
    /// A Hugging Face folder (config.json, *.safetensors, tokenizer files).
    case huggingFace(folder: String)
}

public struct LoadedModel {
    public let model: LlamaModel
    public let source: ModelSource

    /// `model` with the files its tokenizer comes from (a model made elsewhere, e.g. on a weight
    /// image, whose checkpoint is `source`).
    public init(model: LlamaModel, source: ModelSource) {
        self.model = model
        self.source = source
    }
}

/// Loads LLaMA-family checkpoints into the engine's flat fp32 layout. Accepts a GGUF file, a
/// safetensors file (with config.json beside it) or a Hugging Face model folder. Every parameter of
/// the layout must be present with the right shape, and every tensor in the file must be one of them.
public enum ModelLoader {
    public static func load(path: String) throws -> LoadedModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelFileError.cannotOpen(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue {
            return try loadHuggingFace(folder: path)
        }
        if path.hasSuffix(".safetensors") {
            return try loadHuggingFace(folder: (path as NSString).deletingLastPathComponent, weightsFile: path)
        }
        return try loadGGUF(path: path)
    }

    /// Where the checkpoint at `path` keeps its tokenizer, without loading its weights: the folder of
    /// a Hugging Face checkpoint, or the GGUF file (mapped; its metadata holds the vocabulary).
    public static func source(path: String) throws -> ModelSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelFileError.cannotOpen(path: path, reason: "no such file or directory")
        }
        if isDirectory.boolValue { return .huggingFace(folder: path) }
        if path.hasSuffix(".safetensors") { return .huggingFace(folder: (path as NSString).deletingLastPathComponent) }
        return .gguf(try GGUFFile(path: path))
    }

    // MARK: GGUF

    public static func loadGGUF(path: String) throws -> LoadedModel {
        let file = try GGUFFile(path: path)
        let config = try LlamaConfig(gguf: file)
        let model = LlamaModel(config: config)
        let layout = model.layout
        let targets = ggufNames(config: config, layout: layout)
        // llama.cpp's converter reorders LLaMA q/k rows for its RoPE; Qwen2 GGUFs keep HF order.
        let permuted = config.architecture == .llama
        var seen = Set<String>()
        for info in file.tensors {
            guard let target = targets[info.name] else {
                let hint = info.name == "rope_freqs.weight" ? " (LLaMA-3 RoPE frequency factors are not supported from GGUF)" : ""
                throw ModelFileError.unexpectedTensor(path: path, tensor: info.name + hint)
            }
            seen.insert(info.name)
            guard info.shape == target.tensor.shape else {
                throw ModelFileError.wrongShape(path: path, tensor: info.name, expected: target.tensor.shape, found: info.shape)
            }
            let destination = model.weights + target.tensor.offset
            if permuted, let heads = target.ropeHeads {
                let values = try file.dequantize(info)
                values.withUnsafeBufferPointer {
                    reorderRopeRows($0.baseAddress!, into: destination, heads: heads, headDim: config.headDim,
                                    columns: target.tensor.count / target.tensor.shape[0], toGGUF: false)
                }
            } else {
                try file.dequantize(info, into: destination)
            }
        }
        for (name, target) in targets where !seen.contains(name) {
            throw ModelFileError.missingTensor(path: path, tensor: "\(name) (\(target.tensor.name))")
        }
        return LoadedModel(model: model, source: .gguf(file))
    }

    struct GGUFTarget {
        let tensor: LlamaLayout.Tensor
        /// Head count when the rows are q/k rows that llama.cpp permuted.
        let ropeHeads: Int?
    }

    /// GGUF tensor name → layout tensor, following llama.cpp's naming.
    static func ggufNames(config: LlamaConfig, layout: LlamaLayout) -> [String: GGUFTarget] {
        var map: [String: GGUFTarget] = [:]
        for tensor in layout.tensors {
            let hf = tensor.name
            var name: String
            var heads: Int?
            if hf == "model.embed_tokens.weight" {
                name = "token_embd.weight"
            } else if hf == "model.norm.weight" {
                name = "output_norm.weight"
            } else if hf == "lm_head.weight" {
                name = "output.weight"
            } else {
                // model.layers.N.<part>
                let parts = hf.split(separator: ".", maxSplits: 3)
                let block = parts[2], rest = String(parts[3])
                let renames: [String: String] = [
                    "input_layernorm.weight": "attn_norm.weight",
                    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
                    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
                    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
                    "self_attn.o_proj.weight": "attn_output.weight", "self_attn.o_proj.bias": "attn_output.bias",
                    "post_attention_layernorm.weight": "ffn_norm.weight",
                    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                    "mlp.down_proj.weight": "ffn_down.weight",
                ]
                name = "blk.\(block).\(renames[rest]!)"
                if rest.hasPrefix("self_attn.q_proj") { heads = config.numHeads }
                if rest.hasPrefix("self_attn.k_proj") { heads = config.numKVHeads }
            }
            map[name] = GGUFTarget(tensor: tensor, ropeHeads: heads)
        }
        return map
    }

    /// llama.cpp stores row (h, 2i + j) of a q/k head where Hugging Face has row (h, j·e/2 + i), so
    /// that its RoPE can rotate adjacent pairs. Moves rows from one order to the other.
    static func reorderRopeRows(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>,
                                heads: Int, headDim e: Int, columns: Int, toGGUF: Bool) {
        let half = e / 2
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let gguf = (h * e + 2 * i + j) * columns
                    let hf = (h * e + j * half + i) * columns
                    (destination + (toGGUF ? gguf : hf)).update(from: source + (toGGUF ? hf : gguf), count: columns)
                }
            }
        }
    }

    // MARK: Hugging Face

    public static func loadHuggingFace(folder: String, weightsFile: String? = nil) throws -> LoadedModel {
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw ModelFileError.cannotOpen(path: configPath, reason: "missing (a Hugging Face model needs config.json beside its weights)")
        }
        let config = try LlamaConfig(huggingFaceJSON: configData, source: configPath)
        let model = LlamaModel(config: config)
        let layout = model.layout
        let files = try weightsFile.map { [$0] } ?? safetensorsFiles(folder: folder)
        var seen = Set<String>()
        for path in files {
            let file = try SafetensorsFile(path: path)
            for name in file.tensorNames {
                let info = file.tensors[name]!
                guard let target = layout.tensor(named: name) else {
                    // Tied checkpoints sometimes carry a copy of the head; old ones carry RoPE buffers.
                    if (name == "lm_head.weight" && config.tieWordEmbeddings) || name.hasSuffix("rotary_emb.inv_freq") { continue }
                    throw ModelFileError.unexpectedTensor(path: path, tensor: name)
                }
                guard info.shape == target.shape else {
                    throw ModelFileError.wrongShape(path: path, tensor: name, expected: target.shape, found: info.shape)
                }
                try file.read(info, into: model.weights + target.offset)
                seen.insert(name)
            }
        }
        for tensor in layout.tensors where !seen.contains(tensor.name) {
            throw ModelFileError.missingTensor(path: files.count == 1 ? files[0] : folder, tensor: tensor.name)
        }
        return LoadedModel(model: model, source: .huggingFace(folder: folder))
    }

    /// model.safetensors, or the shards named by model.safetensors.index.json.
    private static func safetensorsFiles(folder: String) throws -> [String] {
        let single = (folder as NSString).appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single) { return [single] }
        let indexPath = (folder as NSString).appendingPathComponent("model.safetensors.index.json")
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw ModelFileError.cannotOpen(path: single, reason: "no model.safetensors or model.safetensors.index.json in \(folder)")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let map = json["weight_map"] as? [String: String] else {
            throw ModelFileError.badMetadata(path: indexPath, key: "weight_map", problem: "missing or not an object of strings")
        }
        return Set(map.values).sorted().map { (folder as NSString).appendingPathComponent($0) }
    }
}
