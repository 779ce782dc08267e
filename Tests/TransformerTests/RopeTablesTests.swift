import Transformer
import XCTest

/// RoPE tables are filled on first use, as far as the longest sequence needs: what was scored before
/// must not change any result.
final class RopeTablesTests: XCTestCase {
    func testLogProbsDoNotDependOnWhatWasScoredBefore() throws {
        let config = LlamaConfig(vocabSize: 50, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, numKVHeads: 1,
                                 ropeTheta: 10000, maxPositions: 300)
        func model() -> LlamaModel {
            let m = LlamaModel(config: config)
            for i in 0..<m.layout.parameterCount { m.weights[i] = Float((i * 7919) % 1000) / 2000 - 0.25 }
            return m
        }
        let long = ScoringRequest(tokens: (0..<300).map { Int32($0 * 13 % 50) }, firstScored: 1)
        let short = ScoringRequest(tokens: Array(long.tokens.prefix(7)), firstScored: 1)
        let middle = ScoringRequest(tokens: Array(long.tokens.prefix(130)), firstScored: 1)

        let fresh = try model().logProbs([long])
        let warmed = model()
        _ = try warmed.logProbs([short])
        _ = try warmed.logProbs([middle])
        XCTAssertEqual(try warmed.logProbs([long]), fresh)
    }
}
