import Foundation
import Compute
import TestSupport
import Transformer
import XCTest

final class LoRATests: XCTestCase {
    private func tokens(_ c: LlamaConfig) -> [ScoringRequest] {
        [ScoringRequest(tokens: TinyModels.randomTokens(30, vocab: c.vocabSize, seed: 1), firstScored: 2),
         ScoringRequest(tokens: TinyModels.randomTokens(12, vocab: c.vocabSize, seed: 2), firstScored: 5)]
    }

    /// Adapters with B ≠ 0 so they change the output (fresh ones have B = 0).
    private func adapters(_ c: LlamaConfig, targets: [LoRAConfig.Target] = LoRAConfig.Target.allCases) -> LoRAAdapters {
        let lora = LoRAAdapters(config: LoRAConfig(rank: 4, alpha: 8, targets: targets), model: c, seed: 3)
        var rng = SeededGenerator(seed: 4)
        for adapter in lora.adapters {
            for i in 0..<adapter.outFeatures * 4 { lora.parameters.pointer[adapter.b + i] = 0.1 * rng.nextNormal() }
        }
        return lora
    }

    func testFreshAdaptersLeaveTheModelUnchanged() throws {
        let c = TinyModels.config()
        let model = TinyModels.model(c)
        let before = try model.logProbs(tokens(c))
        model.adapters = LoRAAdapters(config: LoRAConfig(rank: 4, alpha: 8), model: c, seed: 1)
        XCTAssertEqual(try model.logProbs(tokens(c)), before)
    }

    func testMergedWeightsScoreLikeTheAdapters() throws {
        let c = TinyModels.config(.qwen2)
        let model = TinyModels.model(c)
        let plain = try model.logProbs(tokens(c))
        model.adapters = adapters(c)
        let adapted = try model.logProbs(tokens(c))
        let merged = try model.adapters!.merged(into: model).logProbs(tokens(c))
        XCTAssertNotEqual(adapted, plain)
        for (a, b) in zip(adapted.joined(), merged.joined()) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testSaveAndLoadRoundTripWithPEFTNames() throws {
        let c = TinyModels.config()
        let lora = adapters(c, targets: [.q, .v, .down])
        let folder = try temporaryFolder(self)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try lora.save(to: folder)
        let again = LoRAAdapters(config: lora.config, model: c, seed: 99)
        try again.load(from: folder)
        XCTAssertEqual(Array(again.parameters.buffer), Array(lora.parameters.buffer))
        let names = lora.tensorNames(lora.adapters[0])
        XCTAssertEqual(names.a, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        let other = LoRAAdapters(config: LoRAConfig(rank: 4, alpha: 8, targets: [.q]), model: c, seed: 1)
        XCTAssertThrowsError(try other.load(from: folder)) { error in
            XCTAssertTrue("\(error)".contains("unexpected tensor 'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight'"), "\(error)")
        }
    }

    /// Adapter gradients (base frozen) against finite differences along the gradient direction.
    func testAdapterGradientsMatchFiniteDifferences() throws {
        let c = TinyModels.config(.qwen2, tied: false)
        let model = TinyModels.model(c, seed: 8)
        model.adapters = adapters(c)
        let lora = model.adapters!
        let reqs = tokens(c)
        func loss(withGradients: Bool) throws -> (Double, AlignedBuffer<Float>) {
            let tape = try model.trainingForward(reqs)
            let grads = AlignedBuffer<Float>(count: lora.parameterCount)
            let head = model.lmHeadForwardBackward(tape, computeEntropy: false, gradients: nil) { row, _, _ in (row % 2 == 0 ? -1 : 0.5, 0) }
            if withGradients { model.backward(tape, headInputGradient: head.headInputGradient, into: nil, adapterGradients: grads) }
            let value = head.logProbs.enumerated().reduce(0.0) { $0 + Double($1.offset % 2 == 0 ? -1 : 0.5) * Double($1.element) }
            return (value, grads)
        }
        let (_, grads) = try loss(withGradients: true)
        for adapter in lora.adapters {
            for (offset, count) in [(adapter.a, 4 * adapter.inFeatures), (adapter.b, adapter.outFeatures * 4)] {
                let g = Array(UnsafeBufferPointer(start: grads.pointer + offset, count: count))
                let norm = Double(g.reduce(0) { $0 + $1 * $1 }.squareRoot())
                XCTAssertGreaterThan(norm, 1e-4)
                let saved = Array(UnsafeBufferPointer(start: lora.parameters.pointer + offset, count: count))
                let h: Float = 1e-2
                var values: [Double] = []
                for sign: Float in [1, -1] {
                    for i in 0..<count { lora.parameters.pointer[offset + i] = saved[i] + sign * h * g[i] / Float(norm) }
                    values.append(try loss(withGradients: false).0)
                }
                for i in 0..<count { lora.parameters.pointer[offset + i] = saved[i] }
                let numeric = (values[0] - values[1]) / Double(2 * h)
                XCTAssertEqual(numeric, norm, accuracy: 5e-3 * norm, "layer \(adapter.layer) \(adapter.target) \(offset == adapter.a ? "A" : "B")")
            }
        }
    }

    /// On a bf16 weight image (the base LoRA trainers share from a `srppod --dtype bf16`), the forward
    /// multiplies in bf16 and the backward runs through the bf16 values unpacked to fp32 (the LM head
    /// a vocabulary block at a time: 9 000 tokens are three blocks). The adapter gradients are then
    /// those of the fp32 model holding the same bf16-rounded weights, whose gradients the finite
    /// differences above check, up to the forward's rounding of activations to bf16.
    func testAdaptersTrainOverABF16BaseLikeOverItsValuesInFP32() throws {
        var wide = TinyModels.config(.qwen2, tied: false)
        wide.vocabSize = 9000
        for c in [wide, TinyModels.config()] {
            let onImage = TinyModels.onBF16Image(TinyModels.model(c, seed: 8))
            let rounded = LlamaModel(config: c)
            rounded.copyParameters(from: onImage)    // the image's bf16 values, exactly, as fp32
            let qkv = UnsafeBufferPointer(start: rounded.weights + rounded.layout.layers[0].qkv, count: c.qkvDim * c.hiddenSize)
            XCTAssertTrue(qkv.allSatisfy { $0.bitPattern & 0xFFFF == 0 } && qkv.contains { $0 != 0 }, "not the bf16 values")
            let lora = adapters(c)
            onImage.adapters = lora
            rounded.adapters = lora
            let requests = tokens(c)
            func train(_ model: LlamaModel, recompute: Bool = false) throws -> (logProbs: [Float], gradients: [Float]) {
                let tape = try model.trainingForward(requests, recompute: recompute)
                let gradients = AlignedBuffer<Float>(count: lora.parameterCount)
                let head = model.lmHeadForwardBackward(tape, computeEntropy: true, gradients: nil) { row, _, _ in (row % 2 == 0 ? -1 : 0.5, 0.1) }
                model.backward(tape, headInputGradient: head.headInputGradient, into: nil, adapterGradients: gradients)
                return (head.logProbs, Array(gradients.buffer))
            }
            let bf16 = try train(onImage), reference = try train(rounded)
            // The training forward is the scoring forward (the same bf16 products).
            for (a, b) in zip(bf16.logProbs, try onImage.logProbs(requests).joined()) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            let logProbDeviation = zip(bf16.logProbs, reference.logProbs).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThan(logProbDeviation, 0)
            XCTAssertLessThan(logProbDeviation, 0.05)
            for adapter in lora.adapters {
                for (offset, count) in [(adapter.a, 4 * adapter.inFeatures), (adapter.b, adapter.outFeatures * 4)] {
                    let g = bf16.gradients[offset..<offset + count], r = reference.gradients[offset..<offset + count]
                    let error = zip(g, r).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                    let norm = r.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    XCTAssertGreaterThan(norm, 1e-4)
                    XCTAssertLessThan(error, 0.05 * norm, "vocab \(c.vocabSize), layer \(adapter.layer) \(adapter.target) \(offset == adapter.a ? "A" : "B")")
                }
            }
            // Recomputing the layers in the backward runs the same bf16 products.
            XCTAssertEqual(try train(onImage, recompute: true).gradients, bf16.gradients)
            // The merged policy is the bf16 base plus the adapters, in fp32.
            let merged = onImage.mergingAdapters()
            XCTAssertTrue(merged.hasFP32Matrices)
            for (a, b) in zip(try merged.logProbs(requests).joined(), try rounded.logProbs(requests).joined()) {
                XCTAssertEqual(a, b, accuracy: 1e-5)
            }
        }
    }
}
