import Foundation
import Compute
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

    /// A prompt of 70 tokens (past one 64-row attention block) answered three times, and a request
    /// of its own: with `sharePrefixes` the three run as continuations of one prompt sequence.
    private func sharedPromptRequests(_ config: LlamaConfig) -> [ScoringRequest] {
        let prompt = TinyModels.randomTokens(70, vocab: config.vocabSize, seed: 31)
        return [ScoringRequest(tokens: prompt + TinyModels.randomTokens(9, vocab: config.vocabSize, seed: 32), firstScored: 70),
                ScoringRequest(tokens: TinyModels.randomTokens(23, vocab: config.vocabSize, seed: 21), firstScored: 3),
                ScoringRequest(tokens: prompt + TinyModels.randomTokens(50, vocab: config.vocabSize, seed: 33), firstScored: 70),
                ScoringRequest(tokens: prompt + TinyModels.randomTokens(1, vocab: config.vocabSize, seed: 34), firstScored: 70)]
    }

    private func lossAndGradients(_ model: LlamaModel, _ requests: [ScoringRequest], _ loss: TestLoss, temperature: Double = 1,
                                  recompute: Bool = false, sharePrefixes: Bool = false,
                                  withGradients: Bool = true) throws -> (Double, AlignedBuffer<Float>) {
        let tape = try model.trainingForward(requests, recompute: recompute, sharePrefixes: sharePrefixes)
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

    private func checkAllTensors(_ config: LlamaConfig, temperature: Double = 1, sharePrefixes: Bool = false,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let model = TinyModels.model(config, seed: 5)
        let reqs = sharePrefixes ? sharedPromptRequests(config) : requests(config)
        var rng = SeededGenerator(seed: 9)
        let rows = reqs.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
        let loss = TestLoss(logProbWeights: (0..<rows).map { _ in rng.nextNormal() },
                            entropyWeights: (0..<rows).map { _ in 0.5 * rng.nextNormal() })
        let (_, gradients) = try lossAndGradients(model, reqs, loss, temperature: temperature, sharePrefixes: sharePrefixes)
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
                    try self.lossAndGradients(model, reqs, loss, temperature: temperature, sharePrefixes: sharePrefixes,
                                              withGradients: false).0
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

    /// Shared prompts: the prompt's rows collect the gradients of all its continuations' attention.
    func testEveryTensorWithSharedPrompts() throws { try checkAllTensors(TinyModels.config(.qwen2), sharePrefixes: true) }

    /// Sharing a prompt changes how sums are split, not what they are: log-probs and every gradient
    /// equal the unshared run's to float rounding, with or without recomputation.
    func testSharedPromptsGiveTheUnsharedLossAndGradients() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config, seed: 4)
        let reqs = sharedPromptRequests(config)
        let rows = reqs.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
        var rng = SeededGenerator(seed: 12)
        let loss = TestLoss(logProbWeights: (0..<rows).map { _ in rng.nextNormal() }, entropyWeights: (0..<rows).map { _ in 0.3 * rng.nextNormal() })
        let (plainLoss, plain) = try lossAndGradients(model, reqs, loss)
        let (sharedLoss, shared) = try lossAndGradients(model, reqs, loss, sharePrefixes: true)
        let (recomputedLoss, recomputed) = try lossAndGradients(model, reqs, loss, recompute: true, sharePrefixes: true)
        XCTAssertEqual(sharedLoss, plainLoss, accuracy: 1e-5 * abs(plainLoss))
        XCTAssertEqual(recomputedLoss, sharedLoss)
        XCTAssertEqual(Array(recomputed.buffer), Array(shared.buffer))
        for tensor in model.layout.tensors {
            let a = UnsafeBufferPointer(start: plain.pointer + tensor.offset, count: tensor.count)
            let b = UnsafeBufferPointer(start: shared.pointer + tensor.offset, count: tensor.count)
            let scale = a.reduce(0) { max($0, abs($1)) }
            let deviation = zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
            XCTAssertGreaterThan(scale, 0, tensor.name)
            XCTAssertLessThan(deviation, 1e-4 * scale, "\(tensor.name): shared − unshared \(deviation) against |g|max \(scale)")
        }
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
