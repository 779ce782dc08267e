import Foundation
import Compute
import Transformer

/// Small random models for the unit tests of every module, built by the project itself.
public enum TinyModels {
    public static func config(_ architecture: LlamaConfig.Architecture = .llama, tied: Bool = true,
                       ropeScaling: LlamaConfig.RopeScaling? = nil) -> LlamaConfig {
        LlamaConfig(architecture: architecture, vocabSize: 67, hiddenSize: 32, intermediateSize: 48, numLayers: 2,
                    numHeads: 4, numKVHeads: 2, ropeTheta: 10000, ropeScaling: ropeScaling, rmsNormEps: 1e-5,
                    maxPositions: 128, tieWordEmbeddings: tied, qkvBias: architecture == .qwen2,
                    bosTokenId: 1, eosTokenIds: [2], padTokenId: 0)
    }

    /// Random parameters from one seeded stream, tensor by tensor: matrices (and biases) ~ N(0,
    /// `scale`²), by default 0.2 so the tiny model has peaked, non-trivial outputs; norm weights
    /// 1 + N(0, `normJitter`²), or exactly 1 (no draw) when `normJitter` is nil.
    public static func model(_ config: LlamaConfig, seed: UInt64 = 1, scale: Float = 0.2, normJitter: Float? = 0.1) -> LlamaModel {
        let model = LlamaModel(config: config)
        var rng = SeededGenerator(seed: seed)
        for t in model.layout.tensors {
            let isNorm = t.name.hasSuffix("norm.weight")
            for i in 0..<t.count {
                if isNorm {
                    model.weights[t.offset + i] = normJitter.map { 1 + $0 * rng.nextNormal() } ?? 1
                } else {
                    model.weights[t.offset + i] = scale * rng.nextNormal()
                }
            }
        }
        return model
    }

    /// A model on `model`'s weights laid out as a bf16 weight image (matrices packed to bf16, norms
    /// and biases fp32), as `LlamaModel(config:bf16Region:owner:)` runs one mapped from srppod.
    public static func onBF16Image(_ model: LlamaModel) -> LlamaModel {
        let layout = BF16ImageLayout(config: model.config)
        let region = AlignedBuffer<UInt8>(count: layout.byteCount)
        layout.write(model, into: region.pointer)
        return LlamaModel(config: model.config, bf16Region: region.pointer, owner: region)
    }

    public static func randomTokens(_ count: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }
}
