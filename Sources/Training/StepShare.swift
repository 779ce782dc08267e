import Foundation
import Reward

/// What one rank knows of a PPO step before advantages — its share of the responses, their old
/// log-probs, frozen models' scores and value-head outputs — and the whole step gathered from all
/// ranks in step order, the same on every rank. (A single process's share is the whole step.)
struct StepShare: Codable {
    var requests: [TokenPair]
    var endedWithEOS: [Bool]
    var oldLogProbs: [[Float]]
    var scores: [RewardScores]
    /// The value head's outputs per response token, in its normalized units.
    var values: [[Double]]

    init(requests: [TokenPair], sampled: [SampledResponse], oldLogProbs: [[Float]], scores: [RewardScores],
         values: [[Double]]) {
        self.requests = requests
        endedWithEOS = sampled.map(\.endedWithEOS)
        self.oldLogProbs = oldLogProbs
        self.scores = scores
        self.values = values
    }

    /// Every rank's share, concatenated in rank order (ranks hold consecutive parts of the step).
    /// JSON carries each float exactly (shortest round-trip digits).
    func gathered(over collective: Collective) throws -> StepShare {
        if collective.size == 1 { return self }
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let parts = try collective.gather(Array(try encoder.encode(self))).map { try decoder.decode(StepShare.self, from: Data($0)) }
        var whole = parts[0]
        for part in parts.dropFirst() {
            whole.requests += part.requests
            whole.endedWithEOS += part.endedWithEOS
            whole.oldLogProbs += part.oldLogProbs
            whole.scores += part.scores
            whole.values += part.values
        }
        return whole
    }
}
