import Reward
import Transformer
import WeightImage

/// The in-process side of the `RewardScorer` seam: PT and SFT held by this process, scored with the
/// engine directly. Its answers equal the daemon's bit for bit (scoring is batch-invariant).
public final class EmbeddedScorer: RewardScorer {
    public let pt: LlamaModel
    public let sft: LlamaModel
    public let models: FrozenModels
    /// Tokens per forward pass; larger batches are split.
    public var tokenBudget = 8192
    /// Run a prompt shared by several requests of one chunk once (`LlamaModel.logProbs(_:sharePrefixes:)`):
    /// faster for PPO's n samples per prompt, but equal to the daemon's answers only to float
    /// rounding, so off by default. Set the models' `weightPrecision` to `.bf16` for bf16 scoring.
    public var sharePrefixes = false

    public init(pt: LlamaModel, sft: LlamaModel) throws {
        guard pt.config.vocabSize == sft.config.vocabSize else {
            throw RewardScorerError.vocabularyMismatch(pt: pt.config.vocabSize, sft: sft.config.vocabSize)
        }
        self.pt = pt
        self.sft = sft
        let ptHash = WeightImage.contentHash(of: pt)
        models = FrozenModels(pt: ptHash, sft: pt === sft ? ptHash : WeightImage.contentHash(of: sft))
    }

    public func score(_ requests: [TokenPair]) throws -> [RewardScores] {
        var results: [RewardScores] = []
        results.reserveCapacity(requests.count)
        for chunk in consecutiveChunks(requests, maxTokens: tokenBudget) {
            let scoring = chunk.map { ScoringRequest(prompt: $0.prompt, response: $0.response) }
            let scores = try LlamaModel.pairLogProbs(pt: pt, sft: sft, sameWeights: pt === sft, scoring, sharePrefixes: sharePrefixes)
            for (p, s) in zip(scores.pt, scores.sft) { results.append(RewardScores(pt: p, sft: s)) }
        }
        return results
    }
}

public enum RewardScorerError: Error, CustomStringConvertible, Equatable {
    case vocabularyMismatch(pt: Int, sft: Int)

    public var description: String {
        switch self {
        case let .vocabularyMismatch(pt, sft):
            return "PT and SFT have different vocabularies (\(pt) and \(sft) tokens): the coherent reward needs one tokenizer"
        }
    }
}
