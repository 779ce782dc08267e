import Foundation
import ModelFiles
import Compute

/// Writes a model in the Hugging Face layout (config.json + model.safetensors), which transformers
/// loads as LlamaForCausalLM / Qwen2ForCausalLM.
public enum HuggingFaceExport {
    public static func save(_ model: LlamaModel, to folder: String, dtype: SafetensorsDType = .f32) throws {
        precondition(model.hasFP32Matrices, "a model on a bf16 weight image has no fp32 weights to export")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let tensors = model.layout.tensors.map { t in
            SafetensorsWriter.Tensor(name: t.name, shape: t.shape,
                                     values: UnsafeBufferPointer(start: model.weights + t.offset, count: t.count), owner: model)
        }
        try SafetensorsWriter.write(tensors, dtype: dtype, metadata: ["format": "pt"],
                                    to: (folder as NSString).appendingPathComponent("model.safetensors"))
        try AtomicFile.write(model.config.huggingFaceJSON(), to: (folder as NSString).appendingPathComponent("config.json"))
    }
}

/// Writes a model as a GGUF file for llama.cpp: its metadata keys and tensor names, q/k rows in its
/// RoPE order, norms in F32 and matrices in `type` (F32, F16 or BF16).
public enum GGUFExport {
    /// `extraMetadata` carries what the engine does not own, e.g. the `tokenizer.*` keys.
    public static func save(_ model: LlamaModel, to path: String, type: GGMLType = .f32,
                            name: String = "srppo model", extraMetadata: [(String, GGUFValue)] = []) throws {
        precondition(model.hasFP32Matrices, "a model on a bf16 weight image has no fp32 weights to export")
        let c = model.config
        let arch = c.architecture == .qwen2 ? "qwen2" : "llama"
        var writer = GGUFWriter()
        let fileType: UInt32 = switch type { case .f16: 1; case .bf16: 32; default: 0 }
        writer.metadata = [
            ("general.architecture", .string(arch)),
            ("general.name", .string(name)),
            ("general.file_type", .uint32(fileType)),
            ("\(arch).block_count", .uint32(UInt32(c.numLayers))),
            ("\(arch).context_length", .uint32(UInt32(c.maxPositions))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.numHeads))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.numKVHeads))),
            ("\(arch).attention.key_length", .uint32(UInt32(c.headDim))),
            ("\(arch).attention.value_length", .uint32(UInt32(c.headDim))),
            ("\(arch).rope.dimension_count", .uint32(UInt32(c.headDim))),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
            ("\(arch).vocab_size", .uint32(UInt32(c.vocabSize))),
        ]
        if case let .linear(factor)? = c.ropeScaling {
            writer.metadata += [("\(arch).rope.scaling.type", .string("linear")), ("\(arch).rope.scaling.factor", .float32(Float(factor)))]
        } else if c.ropeScaling != nil {
            throw ModelFileError.badMetadata(path: path, key: "rope_scaling", problem: "LLaMA-3 RoPE scaling cannot be exported to GGUF yet")
        }
        let owned = Set(writer.metadata.map(\.0))
        writer.metadata += extraMetadata.filter { !owned.contains($0.0) }

        let targets = ModelLoader.ggufNames(config: c, layout: model.layout)
            .sorted { $0.value.tensor.offset < $1.value.tensor.offset }
        for (ggufName, target) in targets {
            let t = target.tensor
            let type = t.shape.count == 1 ? .f32 : type
            if c.architecture == .llama, let heads = target.ropeHeads {
                let reordered = AlignedBuffer<Float>(count: t.count)
                ModelLoader.reorderRopeRows(model.weights + t.offset, into: reordered.pointer, heads: heads, headDim: c.headDim,
                                            columns: t.count / t.shape[0], toGGUF: true)
                writer.tensors.append(.init(name: ggufName, shape: t.shape, type: type, buffer: reordered))
            } else {
                writer.tensors.append(.init(name: ggufName, shape: t.shape, type: type,
                                            values: UnsafeBufferPointer(start: model.weights + t.offset, count: t.count), owner: model))
            }
        }
        try writer.write(to: path)
    }
}

/// `srppo export`: the output format follows the path — one ending in .gguf is a GGUF file for
/// llama.cpp (with the `tokenizer.*` metadata of a GGUF source copied), anything else a Hugging Face
/// folder (config.json + model.safetensors) that transformers loads.
public enum ModelExport {
    /// Storage type of the weight matrices.
    public enum MatrixType: String, CaseIterable, Sendable { case f32, f16, bf16 }

    public static func save(_ loaded: LoadedModel, to out: String, matrices: MatrixType) throws {
        if out.hasSuffix(".gguf") {
            var tokenizerKeys: [(String, GGUFValue)] = []
            if case let .gguf(file) = loaded.source {
                tokenizerKeys = file.metadataKeys.filter { $0.hasPrefix("tokenizer.") }.map { ($0, file.metadata[$0]!) }
            }
            let type: GGMLType = switch matrices { case .f32: .f32; case .f16: .f16; case .bf16: .bf16 }
            try GGUFExport.save(loaded.model, to: out, type: type, extraMetadata: tokenizerKeys)
        } else {
            let type: SafetensorsDType = switch matrices { case .f32: .f32; case .f16: .f16; case .bf16: .bf16 }
            try HuggingFaceExport.save(loaded.model, to: out, dtype: type)
        }
    }
}
