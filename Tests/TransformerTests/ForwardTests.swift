import Foundation
import Compute
import TestSupport
import Transformer
import XCTest

final class ForwardTests: XCTestCase {
    /// The engine against the naive float64 forward, for each architecture variant: GQA, tied and
    /// separate heads, Qwen2 biases, linear and LLaMA-3 RoPE scaling.
    func testLogProbsMatchNaiveFloat64Reference() throws {
        let variants: [(String, LlamaConfig)] = [
            ("llama tied", TinyModels.config()),
            ("llama separate head", TinyModels.config(tied: false)),
            ("qwen2 biases", TinyModels.config(.qwen2)),
            ("linear rope", TinyModels.config(ropeScaling: .linear(factor: 2))),
            ("llama3 rope", TinyModels.config(ropeScaling: .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16))),
        ]
        for (name, config) in variants {
            let model = TinyModels.model(config, seed: 7)
            let tokens = TinyModels.randomTokens(40, vocab: config.vocabSize, seed: 3)
            let got = try model.logProbs([ScoringRequest(tokens: tokens, firstScored: 1)])[0]
            let expected = NaiveLlama(model).logProbs(tokens: tokens, firstScored: 1)
            XCTAssertEqual(got.count, 39, name)
            let worst = zip(got, expected).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThan(worst, 2e-5, name)
            // The model is far from uniform, so this comparison has teeth.
            XCTAssertGreaterThan(expected.map { abs($0 + log(Double(config.vocabSize))) }.max()!, 1, name)
        }
    }

    /// At temperature T the log-probs are those of softmax(logits / T) (PPO's policy when it samples
    /// at T), batched or alone, shared prompt or not.
    func testLogProbsAtATemperatureMatchTheNaiveReference() throws {
        let config = TinyModels.config(tied: false)
        let model = TinyModels.model(config, seed: 7)
        let tokens = TinyModels.randomTokens(40, vocab: config.vocabSize, seed: 3)
        for temperature in [0.7, 1.3] {
            let got = try model.logProbs([ScoringRequest(tokens: tokens, firstScored: 5)], temperature: temperature)[0]
            let expected = NaiveLlama(model).logProbs(tokens: tokens, firstScored: 5, temperature: temperature)
            let raw = NaiveLlama(model).logProbs(tokens: tokens, firstScored: 5)
            XCTAssertLessThan(zip(got, expected).map { abs(Double($0) - $1) }.max()!, 2e-5, "T \(temperature)")
            XCTAssertGreaterThan(zip(raw, expected).map { abs($0 - $1) }.max()!, 0.1, "T \(temperature) changes nothing here")
        }
    }

    func testBatchEqualsAloneBitForBitOnAnyThreadCount() throws {
        let config = TinyModels.config(.qwen2)
        let model = TinyModels.model(config)
        let requests = (0..<8).map { i in
            ScoringRequest(tokens: TinyModels.randomTokens(5 + 11 * i, vocab: config.vocabSize, seed: UInt64(i)),
                           firstScored: 1 + i % 4)
        }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var results: [[[Float]]] = []
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            let batched = try model.logProbs(requests)
            for (request, values) in zip(requests, batched) {
                XCTAssertEqual(try model.logProbs([request])[0], values, "threads \(threads)")
            }
            results.append(batched)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }

    func testScoredRangeReturnsOnlyRequestedPositions() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config)
        let tokens = TinyModels.randomTokens(20, vocab: config.vocabSize, seed: 9)
        let all = try model.logProbs([ScoringRequest(tokens: tokens, firstScored: 1)])[0]
        let tail = try model.logProbs([ScoringRequest(prompt: Array(tokens[..<12]), response: Array(tokens[12...]))])[0]
        // Same values up to rounding: the LM head runs as one GEMM over different row counts.
        XCTAssertEqual(tail.count, 8)
        for (a, b) in zip(tail, all[11...]) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertEqual(try model.logProbs([ScoringRequest(tokens: tokens, firstScored: 20)])[0], [])
    }

    func testInvalidRequestsGiveTypedErrors() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config)
        func message(_ r: ScoringRequest) -> String {
            do { _ = try model.logProbs([ScoringRequest(tokens: [1, 2], firstScored: 1), r]); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(ScoringRequest(tokens: [1, 67], firstScored: 1)),
                       "sequence 1, position 1: token id 67 is outside the vocabulary (0..<67)")
        XCTAssertEqual(message(ScoringRequest(tokens: [1, -3], firstScored: 1)),
                       "sequence 1, position 1: token id -3 is outside the vocabulary (0..<67)")
        XCTAssertEqual(message(ScoringRequest(tokens: [], firstScored: 0)), "sequence 1 is empty")
        XCTAssertEqual(message(ScoringRequest(tokens: [1, 2], firstScored: 0)),
                       "sequence 1: scoring must start at a position in 1...2 (at least one context token), got 0")
        XCTAssertEqual(message(ScoringRequest(tokens: [Int32](repeating: 1, count: 129), firstScored: 1)),
                       "sequence 1 has 129 tokens, more than the model's context of 128")
    }
}
