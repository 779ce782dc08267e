import Client
import Evaluation
import Reward
import Training
import Transformer
import XCTest

final class RewardSanityTests: XCTestCase {
    private let endTokens: Set<Int32> = [2]

    /// Every row is the coherent reward's sum of the scores PT and SFT give that response to that
    /// prompt: the reference, the next row's reference (the last row wraps to the first), and PT's and
    /// SFT's samples with seed + i, which are the sampler's own.
    func testRowsAreCoherentRewardSumsOfEachKindsResponses() throws {
        let pt = SFTTests.model(seed: 11), sft = SFTTests.model(seed: 12)
        let examples = SFTTests.examples(5, seed: 3)
        let scorer = try EmbeddedScorer(pt: pt, sft: sft)
        let results = try RewardSanity.measure(examples, data: "held-out.jsonl", pt: pt, sft: sft, scorer: scorer,
                                               endTokens: endTokens, maxNewTokens: 6, seed: 40)
        XCTAssertEqual(results.data, "held-out.jsonl")
        XCTAssertEqual(results.rows.count, 4 * examples.count)

        func samples(_ model: LlamaModel) throws -> [[Int32]] {
            try KVCacheSampler().sample(model, prompts: examples.map(\.tokens.prompt), seeds: examples.indices.map { 40 + UInt64($0) },
                                        maxNewTokens: 6, temperature: 1, endTokens: endTokens).map(\.tokens)
        }
        let expected: [RewardSanity.Kind: [[Int32]]] = [
            .reference: examples.map(\.tokens.response),
            .shuffled: [1, 2, 3, 4, 0].map { examples[$0].tokens.response },
            .pt: try samples(pt), .sft: try samples(sft),
        ]
        for kind in RewardSanity.Kind.allCases {
            let rows = results.rows.filter { $0.kind == kind }
            XCTAssertEqual(rows.map(\.index), Array(examples.indices), "\(kind)")
            for (row, (example, response)) in zip(rows, zip(examples, expected[kind]!)) {
                let scores = try scorer.score([TokenPair(prompt: example.tokens.prompt, response: response)])[0]
                let ended = response.last == 2
                XCTAssertEqual(row.reward, CoherentReward().compute(sft: scores.sft, pt: scores.pt, endedWithEOS: ended).sum,
                               accuracy: 1e-9, "\(kind) row \(row.index)")
                XCTAssertEqual(row.tokens, response.count)
                XCTAssertEqual(row.ended, ended)
            }
        }
        XCTAssertTrue(results.rows.filter { $0.kind == .reference }.allSatisfy(\.ended), "every reference ends with EOS")
        XCTAssertEqual(results.kinds.map(\.kind), RewardSanity.Kind.allCases)
        XCTAssertEqual(results.separations.map(\.higher), [.reference, .reference, .sft, .reference])
    }

    /// The same models and seeds give the same results; one demonstration has none to shuffle against.
    func testRepeatsAndNeedsTwoDemonstrations() throws {
        let pt = SFTTests.model(seed: 11), sft = SFTTests.model(seed: 12)
        let scorer = try EmbeddedScorer(pt: pt, sft: sft)
        func measure(_ examples: [TokenizedExample]) throws -> RewardSanity.Results {
            try RewardSanity.measure(examples, data: "d.jsonl", pt: pt, sft: sft, scorer: scorer, endTokens: endTokens, maxNewTokens: 4, seed: 0)
        }
        let examples = SFTTests.examples(3, seed: 5)
        XCTAssertEqual(try measure(examples).rows.map(\.reward), try measure(examples).rows.map(\.reward))
        XCTAssertThrowsError(try measure(Array(examples.prefix(1)))) { error in
            XCTAssertEqual("\(error)", "d.jsonl: needs at least 2 demonstrations (one to shuffle against)")
        }
    }
}
