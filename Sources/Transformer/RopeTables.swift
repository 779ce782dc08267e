import Foundation
import Compute

/// cos/sin of the RoPE angles, [positions, e/2], computed in double precision. Rows are filled on
/// first use (`tables(covering:)`), so building a model costs nothing per context position (filling
/// an 8K context takes ~8 ms, which would dominate attaching a weight image) and a forward pass pays
/// only for the positions it reaches.
final class RopeTables: @unchecked Sendable {
    private let cos: AlignedBuffer<Float>
    private let sin: AlignedBuffer<Float>
    private let inverseFrequencies: [Double]
    private let lock = NSLock()
    /// Rows 0..<filled hold their values; they never change again.
    private var filled = 0

    init(config c: LlamaConfig) {
        let half = c.headDim / 2
        var inverseFrequencies = (0..<half).map { i in 1.0 / Foundation.pow(c.ropeTheta, Double(2 * i) / Double(c.headDim)) }
        switch c.ropeScaling {
        case nil: break
        case let .linear(factor)?:
            inverseFrequencies = inverseFrequencies.map { $0 / factor }
        case let .llama3(factor, low, high, original)?:
            let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
            inverseFrequencies = inverseFrequencies.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        self.inverseFrequencies = inverseFrequencies
        cos = AlignedBuffer(count: c.maxPositions * half)
        sin = AlignedBuffer(count: c.maxPositions * half)
    }

    /// The tables, valid for positions 0..<positions (at most the model's maxPositions). Safe to call
    /// from several threads: rows already filled are only read while later ones are being filled.
    func tables(covering positions: Int) -> (cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = inverseFrequencies.count
        precondition(positions * half <= cos.count, "RoPE tables cover \(cos.count / max(half, 1)) positions, \(positions) asked")
        lock.withLock {
            guard positions > filled else { return }
            let (cosTable, sinTable, first) = (cos.pointer, sin.pointer, filled)
            inverseFrequencies.withUnsafeBufferPointer { frequencies in
                // Rows are independent: the workers split them.
                Parallel.forRanges(positions - first) { rows in
                    for p in rows.lowerBound + first..<rows.upperBound + first {
                        for i in 0..<half {
                            let angle = Double(p) * frequencies[i]
                            cosTable[p * half + i] = Float(Foundation.cos(angle))
                            sinTable[p * half + i] = Float(Foundation.sin(angle))
                        }
                    }
                }
            }
            filled = positions
        }
        return (UnsafePointer(cos.pointer), UnsafePointer(sin.pointer))
    }
}
