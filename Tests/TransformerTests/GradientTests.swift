import Foundation
import Tensor
import TestSupport
import Transformer
import XCTest

/// Every parameter tensor's gradient against central finite differences, on tiny models.
final class GradientTests: XCTestCase {
    /// loss = Σ_rows c_row · log p(target) + e_row · entropy, with fixed random coefficients: it
    /// exercises both inputs of the LM head backward.
    struct TestLoss {
        let logProbWeights: [Float]
        let entropyWeights: [Float]
    }

    private func requests(_ config: LlamaConfig) -> [ScoringRequest] {
        [ScoringRequest(tokens: TinyModels.randomTokens(23, vocab: config.vocabSize, seed: 21), firstScored: 3),
         ScoringRequest(tokens: TinyModels.randomTokens(70, vocab: config.vocabSize, seed: 22), firstScored: 40)]
    }

    private func lossAndGradients(_ model: LlamaModel, _ requests: [ScoringRequest], _ loss: TestLoss, temperature: Double = 1,
                                  recompute: Bool = false, withGradients: Bool = true) throws -> (Double, AlignedBuffer<Float>) {
        let tape = try model.trainingForward(requests, recompute: recompute)
        let gradients = AlignedBuffer<Float>(count: model.layout.parameterCount)
        let head = model.lmHeadForwardBackward(tape, computeEntropy: true, temperature: temperature,
                                               gradients: withGradients ? gradients : nil) { row, _, _ in
            (loss.logProbWeights[row], loss.entropyWeights[row])
        }
        var value = 0.0
        for row in 0..<tape.scoredCount {
            value += Double(loss.logProbWeights[row]) * Double(head.logProbs[row]) + Double(loss.entropyWeights[row]) * Double(head.entropies[row])
        }
        if withGradients { model.backward(tape, headInputGradient: head.headInputGradient, into: gradients) }
        return (value, gradients)
    }

    private func checkAllTensors(_ config: LlamaConfig, temperature: Double = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = TinyModels.model(config, seed: 5)
        let reqs = requests(config)
        var rng = SeededGenerator(seed: 9)
        let rows = reqs.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
        let loss = TestLoss(logProbWeights: (0..<rows).map { _ in rng.nextNormal() },
                            entropyWeights: (0..<rows).map { _ in 0.5 * rng.nextNormal() })
        let (_, gradients) = try lossAndGradients(model, reqs, loss, temperature: temperature)
        let h: Float = 1e-2
        var report: [String] = []
        for tensor in model.layout.tensors {
            let g = Array(UnsafeBufferPointer(start: gradients.pointer + tensor.offset, count: tensor.count))
            let gradientNorm = Double(g.reduce(0) { $0 + $1 * $1 }.squareRoot())
            XCTAssertGreaterThan(gradientNorm, 1e-3, "\(tensor.name) gets no gradient", file: file, line: line)
            // Two directional derivatives over the whole tensor: along the gradient (checks its
            // length) and along a random unit direction (checks its orientation).
            var random = (0..<tensor.count).map { _ in rng.nextNormal() }
            let randomNorm = random.reduce(0) { $0 + $1 * $1 }.squareRoot()
            random = random.map { $0 / randomNorm }
            let alongGradient = g.map { Float(Double($0) / gradientNorm) }
            var errors: [Double] = []
            for direction in [alongGradient, random] {
                let numeric = try directionalDerivative(model, tensor, direction, h: h) {
                    try self.lossAndGradients(model, reqs, loss, temperature: temperature, withGradients: false).0
                }
                var analytic = 0.0
                for i in 0..<tensor.count { analytic += Double(g[i]) * Double(direction[i]) }
                errors.append(abs(numeric - analytic) / gradientNorm)
            }
            report.append(String(format: "%@ %.1e %.1e (|g| %.4f)", tensor.name, errors[0], errors[1], gradientNorm))
            XCTAssertLessThan(errors.max()!, 5e-3, "\(tensor.name): relative errors \(errors)", file: file, line: line)
        }
        print("finite-difference errors relative to |g| (along g, random direction), \(config.architecture) tied=\(config.tieWordEmbeddings):\n  " + report.joined(separator: "\n  "))
    }

    /// (loss(θ + h·v) − loss(θ − h·v)) / 2h for the tensor's parameters θ.
    private func directionalDerivative(_ model: LlamaModel, _ tensor: LlamaLayout.Tensor, _ direction: [Float], h: Float,
                                       loss: () throws -> Double) throws -> Double {
        let saved = Array(UnsafeBufferPointer(start: model.weights + tensor.offset, count: tensor.count))
        defer { for i in 0..<tensor.count { model.weights[tensor.offset + i] = saved[i] } }
        var values: [Double] = []
        for sign: Float in [1, -1] {
            for i in 0..<tensor.count { model.weights[tensor.offset + i] = saved[i] + sign * h * direction[i] }
            values.append(try loss())
        }
        return (values[0] - values[1]) / Double(2 * h)
    }

    func testEveryTensorOfLlamaWithTiedHead() throws { try checkAllTensors(TinyModels.config()) }

    func testEveryTensorOfQwen2WithBiasesAndSeparateHead() throws { try checkAllTensors(TinyModels.config(.qwen2, tied: false)) }

    /// Log-probs and entropy of softmax(logits / T): the head's backward carries the 1/T.
    func testEveryTensorAtATemperature() throws { try checkAllTensors(TinyModels.config(tied: false), temperature: 0.6) }

    func testEveryTensorWithOutputBias() throws {
        var config = TinyModels.config(tied: false)
        config.qkvBias = true
        config.outputBias = true
        try checkAllTensors(config)
    }

    func testRecomputeGivesTheSameGradients() throws {
        let config = TinyModels.config(.qwen2)
        let model = TinyModels.model(config, seed: 3)
        let reqs = requests(config)
        let rows = reqs.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
        let loss = TestLoss(logProbWeights: [Float](repeating: -1, count: rows), entropyWeights: [Float](repeating: 0.1, count: rows))
        let (a, stored) = try lossAndGradients(model, reqs, loss)
        let (b, recomputed) = try lossAndGradients(model, reqs, loss, recompute: true)
        XCTAssertEqual(a, b)
        XCTAssertEqual(Array(stored.buffer), Array(recomputed.buffer))
    }

    func testTrainingForwardLogProbsEqualScoring() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config)
        let reqs = requests(config)
        let tape = try model.trainingForward(reqs)
        for temperature in [1, 0.7] {
            let head = model.lmHeadForwardBackward(tape, computeEntropy: false, temperature: temperature, gradients: nil) { _, _, _ in (0, 0) }
            let scored = try model.logProbs(reqs, temperature: temperature).flatMap { $0 }
            XCTAssertEqual(head.logProbs.count, scored.count)
            for (a, b) in zip(head.logProbs, scored) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        }
    }
}
