import Evaluation
import Reward
import Transformer

extension RewardSanity {
    /// Fewer than two demonstrations: none to shuffle against.
    public struct TooFewDemonstrations: Error, CustomStringConvertible {
        public let data: String
        public var description: String { "\(data): needs at least 2 demonstrations (one to shuffle against)" }
    }

    /// `srppo reward-sanity`'s procedure. For each demonstration (row i) it scores four responses to
    /// its prompt with `scorer` (PT and SFT's log-probs): the demonstration's own response
    /// (reference), the next row's reference (shuffled), and a sample of PT and one of SFT (PPO's
    /// sampler at temperature 1, seed `seed` + i, up to `maxNewTokens`, ending at `endTokens`).
    /// A row's reward is the coherent reward's sum, which every placement reports, truncated or not.
    /// `data` names the demonstrations in the results.
    public static func measure(_ examples: [TokenizedExample], data: String, pt: LlamaModel, sft: LlamaModel, scorer: RewardScorer,
                               endTokens: Set<Int32>, maxNewTokens: Int, seed: UInt64,
                               sampler: ResponseSampler = KVCacheSampler()) throws -> Results {
        guard examples.count >= 2 else { throw TooFewDemonstrations(data: data) }
        func samples(_ model: LlamaModel) throws -> [[Int32]] {
            try sampler.sample(model, prompts: examples.map(\.tokens.prompt), seeds: examples.indices.map { seed &+ UInt64($0) },
                               maxNewTokens: maxNewTokens, temperature: 1, endTokens: endTokens).map(\.tokens)
        }
        let responses: [(Kind, [[Int32]])] = [(.reference, examples.map(\.tokens.response)),
                                              (.shuffled, examples.indices.map { examples[($0 + 1) % examples.count].tokens.response }),
                                              (.pt, try samples(pt)), (.sft, try samples(sft))]
        var rows: [Row] = []
        for (kind, answers) in responses {
            let scores = try scorer.score(zip(examples, answers).map { TokenPair(prompt: $0.tokens.prompt, response: $1) })
            for (i, (answer, s)) in zip(answers, scores).enumerated() {
                let ended = answer.last.map(endTokens.contains) ?? false
                let reward = CoherentReward().compute(sft: s.sft, pt: s.pt, endedWithEOS: ended).sum
                rows.append(Row(index: i, kind: kind, reward: reward, tokens: answer.count, ended: ended))
            }
        }
        return summarize(rows, data: data)
    }
}
