import Tensor

/// Which precision the scoring forward multiplies the frozen weights in.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// fp32 weights through OpenBLAS sgemm (the reference path; what training uses).
    case f32
    /// bf16 copies of the projection and LM-head weights through the bf16 GEMM (`vdpbf16ps` with fp32
    /// accumulation, or the portable C kernel): activations are rounded to bf16 at each product, sums
    /// stay fp32. Norms, RoPE, attention, SwiGLU and the log-softmax stay fp32. Applies to the scoring
    /// forward (`logProbs`, `headInputs`); KV-cache generation and training always use fp32.
    case bf16
}

/// bf16 packed copies of a model's matrix weights: the seven projections of every layer (as the
/// fused groups qkv, o, gate+up, down) and the LM head. Embedding lookups, norms and biases keep
/// reading the fp32 parameters.
public final class BF16Weights: @unchecked Sendable {
    struct Layer {
        let qkv, o, gateUp, down: BF16Matrix
    }

    let layers: [Layer]
    let lmHead: BF16Matrix

    /// Packs the current fp32 weights of `model` (a snapshot: later changes to the fp32 parameters
    /// are not seen, so this is for frozen models).
    init(packing model: LlamaModel) {
        let c = model.config, w = model.weights
        var layers: [Layer] = []
        for layer in model.layout.layers {
            layers.append(Layer(
                qkv: BF16Matrix(packing: w + layer.qkv, rows: c.qkvDim, columns: c.hiddenSize),
                o: BF16Matrix(packing: w + layer.o, rows: c.hiddenSize, columns: c.qDim),
                gateUp: BF16Matrix(packing: w + layer.gateUp, rows: 2 * c.intermediateSize, columns: c.hiddenSize),
                down: BF16Matrix(packing: w + layer.down, rows: c.hiddenSize, columns: c.intermediateSize)))
        }
        self.layers = layers
        lmHead = BF16Matrix(packing: w + model.layout.lmHead, rows: c.vocabSize, columns: c.hiddenSize)
    }

    func matrix(_ group: ProjectionGroup, layer: Int) -> BF16Matrix {
        let l = layers[layer]
        switch group {
        case .qkv: return l.qkv
        case .o: return l.o
        case .gateUp: return l.gateUp
        case .down: return l.down
        }
    }

    /// Bytes of all packed matrices.
    public var packedBytes: Int {
        layers.reduce(lmHead.packedBytes) { $0 + $1.qkv.packedBytes + $1.o.packedBytes + $1.gateUp.packedBytes + $1.down.packedBytes }
    }
}

extension LlamaModel {
    /// The precision the scoring forward (`logProbs`, `headInputs`) uses for its matrix products.
    /// Setting `.bf16` packs the current weights once (about 0.2 s for SmolLM2); the model must then
    /// be treated as frozen. Training always runs in fp32 and refuses a bf16 model.
    public var weightPrecision: WeightPrecision {
        get { bf16Weights == nil ? .f32 : .bf16 }
        set {
            switch newValue {
            case .f32: bf16Weights = nil
            case .bf16: if bf16Weights == nil { bf16Weights = BF16Weights(packing: self) }
            }
        }
    }
}
