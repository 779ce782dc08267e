import Compute
import Training
import Transformer
import XCTest

/// The critic: the value head's gradients (into its own parameters and back through the trunk)
/// against central finite differences, and the return statistics that scale its targets.
final class ValueHeadTests: XCTestCase {
    private let requests = [ScoringRequest(prompt: [1, 5, 9, 12], response: [7, 3, 22, 2]),
                            ScoringRequest(prompt: [1, 30], response: [4, 4, 18, 11, 25, 2])]

    /// loss = Σ_rows c_row · V_row with fixed random coefficients; returns the loss and, when asked,
    /// the analytic gradients of the head [w, b] and of the trunk.
    private func loss(_ critic: LlamaModel, _ head: ValueHead, _ c: [Double],
                      gradients: (head: AlignedBuffer<Float>, trunk: AlignedBuffer<Float>)? = nil) throws -> Double {
        let tape = try critic.trainingForward(requests)
        let values = head.values(tape.headInput.pointer, rows: tape.scoredCount)
        if let gradients {
            let dInputs = head.backward(tape.headInput.pointer, rows: tape.scoredCount, valueGradients: c, into: gradients.head)
            critic.backward(tape, headInputGradient: dInputs, into: gradients.trunk)
        }
        return zip(c, values).reduce(0) { $0 + $1.0 * $1.1 }
    }

    func testValueHeadGradientsMatchFiniteDifferences() throws {
        let critic = SFTTests.model(seed: 3)
        let head = ValueHead(width: critic.config.hiddenSize)
        var rng = SeededGenerator(seed: 4)
        for i in 0...head.width { head.parameters.pointer[i] = 0.3 * rng.nextNormal() }
        let rows = requests.reduce(0) { $0 + $1.tokens.count - $1.firstScored }
        let c = (0..<rows).map { _ in Double(rng.nextNormal()) }
        let gradients = (head: AlignedBuffer<Float>(count: head.width + 1), trunk: AlignedBuffer<Float>(count: critic.layout.parameterCount))
        _ = try loss(critic, head, c, gradients: gradients)

        func centralDifference(_ pointer: UnsafeMutablePointer<Float>, _ h: Float = 1e-2) throws -> Double {
            let saved = pointer.pointee
            defer { pointer.pointee = saved }
            pointer.pointee = saved + h
            let up = try loss(critic, head, c)
            pointer.pointee = saved - h
            return (up - (try loss(critic, head, c))) / Double(2 * h)
        }
        // Every head parameter (the head is linear in them: the difference is exact up to rounding).
        for i in 0...head.width {
            let numeric = try centralDifference(head.parameters.pointer + i)
            XCTAssertEqual(Double(gradients.head.pointer[i]), numeric, accuracy: 1e-3 * max(1, abs(numeric)), "head parameter \(i)")
        }
        XCTAssertGreaterThan(abs(gradients.head.pointer[head.width]), 0.1, "the bias gets no gradient")
        // The gradient reaches the trunk: the largest entries of a few tensors.
        for name in ["model.norm.weight", "model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight"] {
            let tensor = critic.layout.tensors.first { $0.name == name }!
            let g = UnsafeBufferPointer(start: gradients.trunk.pointer + tensor.offset, count: tensor.count)
            let largest = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
            XCTAssertGreaterThan(abs(g[largest]), 1e-4, "\(name) gets no gradient")
            let numeric = try centralDifference(critic.weights + tensor.offset + largest)
            XCTAssertEqual(Double(g[largest]), numeric, accuracy: 2e-2 * abs(numeric), name)
        }
    }

    /// The statistics follow an exponential moving average, debiased: after one batch they are that
    /// batch's mean and deviation, and values round-trip through normalize/denormalize.
    func testValueNormalizerTracksTheReturns() {
        var norm = ValueNormalizer(decay: 0.9)
        XCTAssertTrue(norm.isEmpty)
        XCTAssertEqual(norm.normalize(5), 5)
        norm.update([18, 22, 20, 20])
        XCTAssertEqual(norm.mean, 20, accuracy: 1e-9)
        XCTAssertEqual(norm.standardDeviation, 2.0.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(norm.normalize(22), 2 / 2.0.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(norm.denormalize(norm.normalize(-3.5)), -3.5, accuracy: 1e-9)
        norm.update([30, 30])
        // weights 0.09 / 0.19 on the first batch, 0.1 / 0.19 on the second
        XCTAssertEqual(norm.mean, (0.09 * 20 + 0.1 * 30) / 0.19, accuracy: 1e-9)
        var constant = ValueNormalizer(decay: 0.9)
        constant.update([0, 0, 0])
        XCTAssertEqual(constant.standardDeviation, 1e-3, "identical returns must not divide by 0")
    }
}
