import CKernels
import Compute
import Transformer

/// The numbers an optimizer updates — a model's whole flat parameter buffer, or its LoRA adapters —
/// with a gradient buffer of the same layout and the ranges that get weight decay (matrices, not
/// norms or biases).
public final class TrainableParameters {
    public let values: UnsafeMutablePointer<Float>
    public let count: Int
    public let gradients: AlignedBuffer<Float>
    public let decayRanges: [Range<Int>]
    public let description: String
    /// Keeps the memory behind `values` alive.
    private let owner: AnyObject

    init(values: UnsafeMutablePointer<Float>, count: Int, decayRanges: [Range<Int>], description: String, owner: AnyObject) {
        self.values = values
        self.count = count
        self.decayRanges = decayRanges
        self.description = description
        self.owner = owner
        gradients = AlignedBuffer(count: count)
    }

    /// Every parameter of the model (full fine-tuning).
    public static func fullModel(_ model: LlamaModel) -> TrainableParameters {
        let matrices = model.layout.tensors.filter { $0.shape.count == 2 }.map { $0.offset..<$0.offset + $0.count }
        return TrainableParameters(values: model.weights, count: model.layout.parameterCount, decayRanges: matrices,
                                   description: "full model", owner: model)
    }

    /// Only the model's LoRA adapters; the base stays frozen.
    public static func adapters(_ lora: LoRAAdapters) -> TrainableParameters {
        let r = lora.config.rank
        let ranges = lora.adapters.flatMap { a in
            [a.a..<a.a + r * a.inFeatures, a.b..<a.b + a.outFeatures * r]
        }
        return TrainableParameters(values: lora.parameters.pointer, count: lora.parameterCount, decayRanges: ranges,
                                   description: "LoRA rank \(r)", owner: lora)
    }

    public func zeroGradients() { gradients.zero() }

    /// Global L2 norm of the gradients.
    public func gradientNorm() -> Double {
        srppo_sum_squares_f64(gradients.pointer, count).squareRoot()
    }

    /// Scales the gradients so their global norm is at most `maxNorm`; returns the norm before.
    @discardableResult
    public func clipGradients(maxNorm: Double) -> Double {
        let norm = gradientNorm()
        if maxNorm > 0, norm > maxNorm { srppo_scale(gradients.pointer, count, Float(maxNorm / norm)) }
        return norm
    }
}
