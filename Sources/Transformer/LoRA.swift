import Foundation
import ModelFiles
import Compute

/// Low-rank adapters: for each selected projection W [out, in], y = x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ with
/// A [r, in] and B [out, r] trainable and W frozen. B starts at zero, so a fresh adapter leaves the
/// model unchanged. Saved under PEFT's tensor names so other tools read them.
public struct LoRAConfig: Codable, Equatable, Sendable {
    public enum Target: String, Codable, CaseIterable, Sendable {
        case q, k, v, o, gate, up, down
    }

    public var rank: Int
    public var alpha: Double
    public var targets: [Target]

    public init(rank: Int = 16, alpha: Double = 32, targets: [Target] = Target.allCases) {
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
    }

    public var scale: Float { Float(alpha / Double(rank)) }
}

public final class LoRAAdapters: @unchecked Sendable {
    /// One adapter: where A and B live in `parameters`, and which output columns of which fused
    /// projection group it adds to.
    public struct Adapter: Sendable, Equatable {
        public let layer: Int
        public let target: LoRAConfig.Target
        public let inFeatures: Int
        public let outFeatures: Int
        /// Columns of the fused projection's output (q,k,v share one; gate,up another).
        public let columns: Range<Int>
        public let a: Int
        public let b: Int
    }

    public let config: LoRAConfig
    public let adapters: [Adapter]
    public let parameters: AlignedBuffer<Float>
    public var parameterCount: Int { parameters.count }

    /// Fresh adapters: A ~ U(−1/√in, 1/√in) (PEFT's default), B = 0.
    public init(config: LoRAConfig, model: LlamaConfig, seed: UInt64) {
        self.config = config
        var list: [Adapter] = []
        var next = 0
        for layer in 0..<model.numLayers {
            for target in LoRAConfig.Target.allCases where config.targets.contains(target) {
                let (inFeatures, columns) = Self.shape(target, model)
                let a = next
                next += config.rank * inFeatures
                let b = next
                next += columns.count * config.rank
                next = (next + 15) / 16 * 16
                list.append(Adapter(layer: layer, target: target, inFeatures: inFeatures, outFeatures: columns.count,
                                    columns: columns, a: a, b: b))
            }
        }
        adapters = list
        parameters = AlignedBuffer(count: next)
        var rng = SeededGenerator(seed: seed)
        for adapter in list {
            let bound = 1 / Float(adapter.inFeatures).squareRoot()
            for i in 0..<config.rank * adapter.inFeatures {
                parameters.pointer[adapter.a + i] = (2 * rng.nextUniform() - 1) * bound
            }
        }
    }

    /// Input width and output columns (within its fused group) of a target projection.
    static func shape(_ target: LoRAConfig.Target, _ c: LlamaConfig) -> (Int, Range<Int>) {
        switch target {
        case .q: return (c.hiddenSize, 0..<c.qDim)
        case .k: return (c.hiddenSize, c.qDim..<c.qDim + c.kvDim)
        case .v: return (c.hiddenSize, c.qDim + c.kvDim..<c.qkvDim)
        case .o: return (c.qDim, 0..<c.hiddenSize)
        case .gate: return (c.hiddenSize, 0..<c.intermediateSize)
        case .up: return (c.hiddenSize, c.intermediateSize..<2 * c.intermediateSize)
        case .down: return (c.intermediateSize, 0..<c.hiddenSize)
        }
    }

    /// The adapters of one layer that add to a projection group.
    func adapters(layer: Int, group: ProjectionGroup) -> [Adapter] {
        adapters.filter { $0.layer == layer && group.targets.contains($0.target) }
    }

    /// PEFT names: base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight.
    public func tensorNames(_ adapter: Adapter) -> (a: String, b: String) {
        let module: String = switch adapter.target {
        case .q: "self_attn.q_proj"
        case .k: "self_attn.k_proj"
        case .v: "self_attn.v_proj"
        case .o: "self_attn.o_proj"
        case .gate: "mlp.gate_proj"
        case .up: "mlp.up_proj"
        case .down: "mlp.down_proj"
        }
        let prefix = "base_model.model.model.layers.\(adapter.layer).\(module)"
        return (prefix + ".lora_A.weight", prefix + ".lora_B.weight")
    }

    // MARK: Saving, loading, merging

    /// Writes adapter_model.safetensors and adapter_config.json (PEFT's layout).
    public func save(to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var tensors: [SafetensorsWriter.Tensor] = []
        for adapter in adapters {
            let names = tensorNames(adapter)
            tensors.append(.init(name: names.a, shape: [config.rank, adapter.inFeatures],
                                 values: UnsafeBufferPointer(start: parameters.pointer + adapter.a, count: config.rank * adapter.inFeatures), owner: parameters))
            tensors.append(.init(name: names.b, shape: [adapter.outFeatures, config.rank],
                                 values: UnsafeBufferPointer(start: parameters.pointer + adapter.b, count: adapter.outFeatures * config.rank), owner: parameters))
        }
        try SafetensorsWriter.write(tensors, to: folder + "/adapter_model.safetensors")
        let modules = config.targets.map { "\($0.rawValue)_proj" }
        let peft: [String: Any] = ["peft_type": "LORA", "r": config.rank, "lora_alpha": config.alpha,
                                   "target_modules": modules, "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM"]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: peft, options: [.prettyPrinted, .sortedKeys]),
                             to: folder + "/adapter_config.json")
    }

    /// Reads adapters written by `save` into these (same config and model); fails on any mismatch.
    public func load(from folder: String) throws {
        let path = folder + "/adapter_model.safetensors"
        let file = try SafetensorsFile(path: path)
        var expected = Set<String>()
        for adapter in adapters {
            let names = tensorNames(adapter)
            for (name, offset, shape) in [(names.a, adapter.a, [config.rank, adapter.inFeatures]),
                                          (names.b, adapter.b, [adapter.outFeatures, config.rank])] {
                expected.insert(name)
                guard let info = file.tensors[name] else { throw ModelFileError.missingTensor(path: path, tensor: name) }
                guard info.shape == shape else { throw ModelFileError.wrongShape(path: path, tensor: name, expected: shape, found: info.shape) }
                try file.read(info, into: parameters.pointer + offset)
            }
        }
        if let extra = file.tensorNames.first(where: { !expected.contains($0) }) {
            throw ModelFileError.unexpectedTensor(path: path, tensor: extra)
        }
    }

    /// A copy of `model` with every adapter folded into its weights: W += (α/r)·B·A.
    public func merged(into model: LlamaModel) -> LlamaModel {
        let merged = LlamaModel(config: model.config)
        merged.copyParameters(from: model)
        for adapter in adapters {
            let layer = model.layout.layers[adapter.layer]
            let (weight, _) = ProjectionGroup.of(adapter.target).weightOffset(layer)
            // Rows of the fused group matrix [groupOut, in] that this projection owns.
            let target = merged.weights + weight + adapter.columns.lowerBound * adapter.inFeatures
            Gemm.multiply(m: adapter.outFeatures, n: adapter.inFeatures, k: config.rank,
                          a: parameters.pointer + adapter.b, lda: config.rank, b: parameters.pointer + adapter.a, ldb: adapter.inFeatures,
                          c: target, ldc: adapter.inFeatures, alpha: config.scale, beta: 1)
        }
        return merged
    }
}

/// The fused projections of a layer, each one GEMM in the forward.
enum ProjectionGroup {
    case qkv, o, gateUp, down

    var targets: [LoRAConfig.Target] {
        switch self {
        case .qkv: return [.q, .k, .v]
        case .o: return [.o]
        case .gateUp: return [.gate, .up]
        case .down: return [.down]
        }
    }

    static func of(_ target: LoRAConfig.Target) -> ProjectionGroup {
        switch target {
        case .q, .k, .v: return .qkv
        case .o: return .o
        case .gate, .up: return .gateUp
        case .down: return .down
        }
    }

    /// The group's weight (and bias) offsets in a layer.
    func weightOffset(_ layer: LlamaLayout.Layer) -> (Int, Int?) {
        switch self {
        case .qkv: return (layer.qkv, layer.qkvBias)
        case .o: return (layer.o, layer.oBias)
        case .gateUp: return (layer.gateUp, nil)
        case .down: return (layer.down, nil)
        }
    }
}

extension LlamaModel {
    /// The model as others will load it: itself, or a copy with its adapters folded into the weights.
    public func mergingAdapters() -> LlamaModel {
        adapters.map { $0.merged(into: self) } ?? self
    }
}
