import Foundation
import Compute
import Training
import Transformer
import XCTest

final class OptimizerTests: XCTestCase {
    /// AdamW against a float64 transcription of the algorithm (Loshchilov & Hutter, decoupled decay).
    func testAdamWMatchesFloat64Reference() throws {
        let config = LlamaConfig(vocabSize: 19, hiddenSize: 16, intermediateSize: 8, numLayers: 1, numHeads: 2, numKVHeads: 1)
        let model = LlamaModel(config: config)
        var rng = SeededGenerator(seed: 1)
        for i in 0..<model.layout.parameterCount { model.weights[i] = rng.nextNormal() }
        let params = TrainableParameters.fullModel(model)
        let adam = AdamWConfig(beta1: 0.9, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1)
        let optimizer = AdamW(config: adam, parameterCount: params.count)
        let decays = Set(params.decayRanges.flatMap { Array($0) })
        var p = (0..<params.count).map { Double(model.weights[$0]) }
        var m = [Double](repeating: 0, count: p.count), v = m
        for step in 1...5 {
            for i in 0..<params.count { params.gradients.pointer[i] = rng.nextNormal() }
            let lr = 0.01 * Double(step)
            for i in 0..<p.count {
                let g = Double(params.gradients.pointer[i])
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.99 * v[i] + 0.01 * g * g
                let mHat = m[i] / (1 - pow(0.9, Double(step))), vHat = v[i] / (1 - pow(0.99, Double(step)))
                p[i] -= lr * (mHat / (vHat.squareRoot() + 1e-6) + (decays.contains(i) ? 0.1 * p[i] : 0))
            }
            optimizer.update(params, learningRate: lr)
        }
        let worst = (0..<p.count).map { abs(Double(model.weights[$0]) - p[$0]) }.max()!
        XCTAssertLessThan(worst, 2e-5)
        // Norm weights get no decay, matrices do.
        XCTAssertFalse(decays.contains(model.layout.tensor(named: "model.norm.weight")!.offset))
        XCTAssertTrue(decays.contains(model.layout.tensor(named: "model.layers.0.mlp.up_proj.weight")!.offset))
    }

    func testGradientClippingScalesToTheLimit() {
        let config = LlamaConfig(vocabSize: 19, hiddenSize: 16, intermediateSize: 8, numLayers: 1, numHeads: 2, numKVHeads: 1)
        let params = TrainableParameters.fullModel(LlamaModel(config: config))
        for i in 0..<params.count { params.gradients.pointer[i] = i % 2 == 0 ? 3 : -4 }
        let expected = (Double(params.count / 2) * 9 + Double((params.count + 1) / 2 - params.count / 2 + params.count / 2) * 16).squareRoot()
        let before = params.clipGradients(maxNorm: 1)
        XCTAssertEqual(before, Double(params.gradientNorm()) * before, accuracy: before * 1e-5 + 1)
        XCTAssertEqual(params.gradientNorm(), 1, accuracy: 1e-5)
        XCTAssertEqual(before, expected, accuracy: expected * 1e-6)
        XCTAssertEqual(params.clipGradients(maxNorm: 5), 1, accuracy: 1e-5)
        XCTAssertEqual(params.gradientNorm(), 1, accuracy: 1e-5)
    }

    func testScheduleWarmsUpThenDecays() {
        let cosine = LearningRateSchedule(peak: 1, warmupSteps: 4, totalSteps: 14, decay: .cosine, minimumRatio: 0.1)
        XCTAssertEqual(cosine.rate(at: 0), 0.25, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 3), 1, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 4), 1, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 13), 0.1, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 4 + 9 / 2), 0.1 + 0.9 * 0.5 * (1 + cos(Double.pi * 4 / 9)), accuracy: 1e-12)
        let linear = LearningRateSchedule(peak: 2, warmupSteps: 0, totalSteps: 11, decay: .linear, minimumRatio: 0)
        XCTAssertEqual(linear.rate(at: 0), 2, accuracy: 1e-12)
        XCTAssertEqual(linear.rate(at: 5), 1, accuracy: 1e-12)
        XCTAssertEqual(linear.rate(at: 10), 0, accuracy: 1e-12)
        XCTAssertEqual(LearningRateSchedule(peak: 3, warmupSteps: 0, totalSteps: 5, decay: .constant).rate(at: 4), 3)
    }
}
