/// Where each parameter of a LLaMA-family model lives in the one flat parameter buffer.
///
/// Tensors use Hugging Face names, shapes and row layout (q/k rows in rotate-half RoPE order) and
/// follow each other in a fixed order, so the same config always gives the same layout: the flat
/// buffer can be saved, shared as an image and mapped back as is. Tensors that are multiplied
/// together sit back to back — q, k, v as one [q+2kv, d] matrix, gate and up as one [2f, d] — so
/// each pair or triple is one GEMM; every group starts on a 64-byte boundary.
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
        /// q_proj, k_proj and v_proj rows back to back: [qDim + 2·kvDim, d].
        public let qkv: Int
        /// Their biases back to back, when the model has them.
        public let qkvBias: Int?
        public let o: Int
        public let oBias: Int?
        public let mlpNorm: Int
        /// gate_proj then up_proj rows: [2f, d].
        public let gateUp: Int
        public let down: Int
    }

    public let tensors: [Tensor]
    public let layers: [Layer]
    public let embedding: Int
    public let finalNorm: Int
    /// Equal to `embedding` when the LM head is tied to the embedding.
    public let lmHead: Int
    /// Total floats, padding included.
    public let parameterCount: Int

    /// Alignment of each tensor group, in floats (64 bytes).
    public static let alignment = 16

    /// Version of the layout rules (tensor order, alignment). Saved weight images record it; bump it
    /// whenever those rules change, so that images built by an older engine are refused, not misread.
    public static let version = 1

    public init(config c: LlamaConfig) {
        var tensors: [Tensor] = []
        var next = 0
        /// Places tensors back to back and returns the first one's offset.
        func group(_ members: [(String, [Int])]) -> Int {
            let first = next
            for (name, shape) in members {
                tensors.append(Tensor(name: name, shape: shape, offset: next))
                next += shape.reduce(1, *)
            }
            next = (next + Self.alignment - 1) / Self.alignment * Self.alignment
            return first
        }
        func add(_ name: String, _ shape: [Int]) -> Int { group([(name, shape)]) }

        embedding = add("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize])
        var layers: [Layer] = []
        for i in 0..<c.numLayers {
            let p = "model.layers.\(i)."
            let attentionNorm = add(p + "input_layernorm.weight", [c.hiddenSize])
            let qkv = group([(p + "self_attn.q_proj.weight", [c.qDim, c.hiddenSize]),
                             (p + "self_attn.k_proj.weight", [c.kvDim, c.hiddenSize]),
                             (p + "self_attn.v_proj.weight", [c.kvDim, c.hiddenSize])])
            let qkvBias = c.qkvBias ? group([(p + "self_attn.q_proj.bias", [c.qDim]),
                                             (p + "self_attn.k_proj.bias", [c.kvDim]),
                                             (p + "self_attn.v_proj.bias", [c.kvDim])]) : nil
            let o = add(p + "self_attn.o_proj.weight", [c.hiddenSize, c.qDim])
            let oBias = c.outputBias ? add(p + "self_attn.o_proj.bias", [c.hiddenSize]) : nil
            let mlpNorm = add(p + "post_attention_layernorm.weight", [c.hiddenSize])
            let gateUp = group([(p + "mlp.gate_proj.weight", [c.intermediateSize, c.hiddenSize]),
                                (p + "mlp.up_proj.weight", [c.intermediateSize, c.hiddenSize])])
            let down = add(p + "mlp.down_proj.weight", [c.hiddenSize, c.intermediateSize])
            layers.append(Layer(attentionNorm: attentionNorm, qkv: qkv, qkvBias: qkvBias, o: o, oBias: oBias,
                                mlpNorm: mlpNorm, gateUp: gateUp, down: down))
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

import Compute

extension AlignedBuffer: ParameterStorage where Element == Float {
    public var floats: UnsafeMutablePointer<Float> { pointer }
    public var floatCount: Int { count }
}
