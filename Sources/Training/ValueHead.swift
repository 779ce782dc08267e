import Compute
import Transformer

/// The critic's scalar head: V = w·h + b on the final-normed hidden state h of each position.
/// Parameters [w (d), b] in one buffer so they train as one `TrainableParameters`.
public final class ValueHead {
    public let width: Int
    public let parameters: AlignedBuffer<Float>

    /// A fresh head: w = 0, b = 0, so every value starts at 0.
    public init(width: Int) {
        self.width = width
        parameters = AlignedBuffer(count: width + 1)
    }

    public var trainable: TrainableParameters {
        TrainableParameters(values: parameters.pointer, count: width + 1, decayRanges: [], description: "value head", owner: self)
    }

    /// V for each row of `inputs` [rows, width].
    public func values(_ inputs: UnsafePointer<Float>, rows: Int) -> [Double] {
        let w = parameters.pointer, b = Double(parameters.pointer[width])
        return (0..<rows).map { r in
            var s = 0.0
            for i in 0..<width { s += Double(inputs[r * width + i]) * Double(w[i]) }
            return s + b
        }
    }

    /// Given ∂loss/∂V per row: accumulates the head's gradient into `gradients` and returns
    /// ∂loss/∂inputs [rows, width] for the trunk's backward.
    public func backward(_ inputs: UnsafePointer<Float>, rows: Int, valueGradients: [Double], into gradients: AlignedBuffer<Float>) -> AlignedBuffer<Float> {
        let dInputs = AlignedBuffer<Float>(count: rows * width)
        let w = parameters.pointer, g = gradients.pointer
        for r in 0..<rows {
            let dv = Float(valueGradients[r])
            if dv == 0 { continue }
            for i in 0..<width {
                dInputs.pointer[r * width + i] = dv * w[i]
                g[i] += dv * inputs[r * width + i]
            }
            g[width] += dv
        }
        return dInputs
    }
}
