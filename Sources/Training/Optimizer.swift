import CKernels
import Foundation
import ModelFiles
import Compute

public struct AdamWConfig: Codable, Equatable, Sendable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.95
    public var epsilon: Double = 1e-8
    public var weightDecay: Double = 0.0

    public init(beta1: Double = 0.9, beta2: Double = 0.95, epsilon: Double = 1e-8, weightDecay: Double = 0.0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// AdamW (Loshchilov & Hutter): Adam moments with weight decay applied to the parameters directly,
/// only on `TrainableParameters.decayRanges`. Its state (step and both moments) is saved with
/// checkpoints so a resumed run continues exactly.
public final class AdamW {
    public let config: AdamWConfig
    public private(set) var step = 0
    let m: AlignedBuffer<Float>
    let v: AlignedBuffer<Float>

    public init(config: AdamWConfig, parameterCount: Int) {
        self.config = config
        m = AlignedBuffer(count: parameterCount)
        v = AlignedBuffer(count: parameterCount)
    }

    /// One update of `parameters` from their gradients at learning rate `lr`.
    public func update(_ parameters: TrainableParameters, learningRate lr: Double) {
        precondition(parameters.count == m.count)
        step += 1
        let c1 = Float(1 - Foundation.pow(config.beta1, Double(step)))
        let c2 = Float(1 - Foundation.pow(config.beta2, Double(step)))
        // Split [0, count) into runs with and without decay.
        var cursor = 0
        var runs: [(Range<Int>, Float)] = []
        for r in parameters.decayRanges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if r.lowerBound > cursor { runs.append((cursor..<r.lowerBound, 0)) }
            runs.append((r, Float(config.weightDecay)))
            cursor = r.upperBound
        }
        if cursor < parameters.count { runs.append((cursor..<parameters.count, 0)) }
        for (range, decay) in runs {
            Parallel.forRanges(range.count, align: 64) { part in
                let i = range.lowerBound + part.lowerBound
                srppo_adamw_update(parameters.values + i, parameters.gradients.pointer + i, m.pointer + i, v.pointer + i,
                                   part.count, Float(lr), Float(config.beta1), Float(config.beta2), Float(config.epsilon),
                                   decay, c1, c2)
            }
        }
    }

    // MARK: State

    public func save(to path: String) throws {
        try SafetensorsWriter.write([.init(name: "exp_avg", shape: [m.count], buffer: m),
                                     .init(name: "exp_avg_sq", shape: [v.count], buffer: v)],
                                    metadata: ["step": String(step)], to: path)
    }

    public func load(from path: String) throws {
        let file = try SafetensorsFile(path: path)
        for (name, buffer) in [("exp_avg", m), ("exp_avg_sq", v)] {
            guard let info = file.tensors[name] else { throw ModelFileError.missingTensor(path: path, tensor: name) }
            guard info.shape == [buffer.count] else {
                throw ModelFileError.wrongShape(path: path, tensor: name, expected: [buffer.count], found: info.shape)
            }
            try file.read(info, into: buffer.pointer)
        }
        guard let s = file.metadata["step"].flatMap(Int.init) else {
            throw ModelFileError.badMetadata(path: path, key: "step", problem: "missing or not an integer")
        }
        step = s
    }
}

/// Learning rate per optimizer step: linear warm-up to the peak, then cosine or linear decay to
/// `minimumRatio` × peak at the last step (or constant).
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Decay: String, Codable, Sendable, CaseIterable { case cosine, linear, constant }

    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var decay: Decay
    public var minimumRatio: Double

    public init(peak: Double, warmupSteps: Int, totalSteps: Int, decay: Decay = .cosine, minimumRatio: Double = 0.1) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.decay = decay
        self.minimumRatio = minimumRatio
    }

    /// Rate for optimizer step `step` (0-based).
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps - 1)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        let floor = peak * minimumRatio
        switch decay {
        case .constant: return peak
        case .linear: return peak - (peak - floor) * progress
        case .cosine: return floor + (peak - floor) * 0.5 * (1 + Foundation.cos(Double.pi * progress))
        }
    }
}
