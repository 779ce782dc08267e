/// Where each parameter of a LLaMA-family model lives in the one flat parameter buffer.
///
/// Tensors use Hugging Face names, shapes and row layout (q/k rows in rotate-half RoPE order) and
/// follow each other in a fixed order, each starting on a 64-byte boundary, so the same config always
/// gives the same layout: the flat buffer can be saved, shared as an image and mapped back as is.
public struct LlamaLayout: Sendable, Equatable {
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    /// Offsets of one decoder layer's tensors.
    public struct Layer: Sendable, Equatable {
        public let attentionNorm: Int
        public let q: Int, k: Int, v: Int, o: Int
        public let qBias: Int?, kBias: Int?, vBias: Int?, oBias: Int?
        public let mlpNorm: Int
        public let gate: Int, up: Int, down: Int
    }

    public let tensors: [Tensor]
    public let layers: [Layer]
    public let embedding: Int
    public let finalNorm: Int
    /// Equal to `embedding` when the LM head is tied to the embedding.
    public let lmHead: Int
    /// Total floats, padding included.
    public let parameterCount: Int

    /// Alignment of each tensor, in floats (64 bytes).
    public static let alignment = 16

    public init(config c: LlamaConfig) {
        var tensors: [Tensor] = []
        var next = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let offset = next
            tensors.append(Tensor(name: name, shape: shape, offset: offset))
            let count = shape.reduce(1, *)
            next = (offset + count + Self.alignment - 1) / Self.alignment * Self.alignment
            return offset
        }
        embedding = add("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize])
        var layers: [Layer] = []
        for i in 0..<c.numLayers {
            let p = "model.layers.\(i)."
            let attentionNorm = add(p + "input_layernorm.weight", [c.hiddenSize])
            let q = add(p + "self_attn.q_proj.weight", [c.qDim, c.hiddenSize])
            let qBias = c.qkvBias ? add(p + "self_attn.q_proj.bias", [c.qDim]) : nil
            let k = add(p + "self_attn.k_proj.weight", [c.kvDim, c.hiddenSize])
            let kBias = c.qkvBias ? add(p + "self_attn.k_proj.bias", [c.kvDim]) : nil
            let v = add(p + "self_attn.v_proj.weight", [c.kvDim, c.hiddenSize])
            let vBias = c.qkvBias ? add(p + "self_attn.v_proj.bias", [c.kvDim]) : nil
            let o = add(p + "self_attn.o_proj.weight", [c.hiddenSize, c.qDim])
            let oBias = c.outputBias ? add(p + "self_attn.o_proj.bias", [c.hiddenSize]) : nil
            let mlpNorm = add(p + "post_attention_layernorm.weight", [c.hiddenSize])
            let gate = add(p + "mlp.gate_proj.weight", [c.intermediateSize, c.hiddenSize])
            let up = add(p + "mlp.up_proj.weight", [c.intermediateSize, c.hiddenSize])
            let down = add(p + "mlp.down_proj.weight", [c.hiddenSize, c.intermediateSize])
            layers.append(Layer(attentionNorm: attentionNorm, q: q, k: k, v: v, o: o,
                                qBias: qBias, kBias: kBias, vBias: vBias, oBias: oBias,
                                mlpNorm: mlpNorm, gate: gate, up: up, down: down))
        }
        finalNorm = add("model.norm.weight", [c.hiddenSize])
        lmHead = c.tieWordEmbeddings ? embedding : add("lm_head.weight", [c.vocabSize, c.hiddenSize])
        self.tensors = tensors
        self.layers = layers
        parameterCount = next
    }

    public func tensor(named name: String) -> Tensor? {
        tensors.first { $0.name == name }
    }
}

/// Memory that holds a model's flat fp32 parameters: an owned heap buffer, or a mapped weight image.
/// The model code reads through `floats` and does not know which.
public protocol ParameterStorage: AnyObject {
    var floats: UnsafeMutablePointer<Float> { get }
    var floatCount: Int { get }
}

import Tensor

extension AlignedBuffer: ParameterStorage where Element == Float {
    public var floats: UnsafeMutablePointer<Float> { pointer }
    public var floatCount: Int { count }
}
