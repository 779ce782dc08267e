import Foundation
import Compute
import TestSupport
import Transformer
import XCTest

/// The bf16 weight path and prompt-prefix sharing of the scoring forward, against the fp32 unshared one.
final class ScoringVariantsTests: XCTestCase {
    private func maxAbsDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        XCTAssertEqual(a.map(\.count), b.map(\.count))
        return zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
    }

    /// Prompts shared by several requests (with responses of many lengths, longer than an attention
    /// block, one empty), a prompt asked once, and two identical requests.
    private func sharedPromptRequests(vocab: Int) -> [ScoringRequest] {
        let a = TinyModels.randomTokens(50, vocab: vocab, seed: 11)
        let b = TinyModels.randomTokens(7, vocab: vocab, seed: 12)
        let c = TinyModels.randomTokens(1, vocab: vocab, seed: 13)
        var requests: [ScoringRequest] = []
        for (i, length) in [70, 1, 33, 65].enumerated() {
            requests.append(ScoringRequest(prompt: a, response: TinyModels.randomTokens(length, vocab: vocab, seed: 20 + UInt64(i))))
        }
        requests.insert(ScoringRequest(prompt: b, response: TinyModels.randomTokens(9, vocab: vocab, seed: 30)), at: 1)
        requests.append(ScoringRequest(prompt: b, response: TinyModels.randomTokens(64, vocab: vocab, seed: 31)))
        requests.append(ScoringRequest(tokens: a, firstScored: a.count))   // nothing scored after the prompt
        requests.append(ScoringRequest(prompt: c, response: TinyModels.randomTokens(12, vocab: vocab, seed: 32)))
        requests.append(requests[0])
        return requests
    }

    func testPrefixSharingEqualsScoringEachRequestAlone() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for config in [TinyModels.config(), TinyModels.config(.qwen2, tied: false)] {
            let model = TinyModels.model(config, seed: 5)
            let requests = sharedPromptRequests(vocab: config.vocabSize)
            let alone = try requests.map { try model.logProbs([$0])[0] }
            for threads in [1, 2, 3] {
                Parallel.threads = threads
                let shared = try model.logProbs(requests, sharePrefixes: true)
                XCTAssertEqual(shared.map(\.count), requests.map { $0.tokens.count - $0.firstScored })
                let difference = maxAbsDifference(shared, alone)
                XCTAssertLessThan(difference, 1e-5, "\(config.architecture), \(threads) threads")
                if threads == 1 { print("prefix sharing vs alone, \(config.architecture): max |Δ| \(difference)") }
                // Sharing is deterministic and thread-count independent.
                if threads > 1 { XCTAssertEqual(shared, try { Parallel.threads = 1; return try model.logProbs(requests, sharePrefixes: true) }()) }
            }
            // Without the flag nothing changes: the batch is bit-identical to each request alone.
            XCTAssertEqual(try model.logProbs(requests), alone)
        }
    }

    /// A shared batch large enough that its projections run as several GEMM segments across sequence
    /// boundaries and its LM-head chunks span requests: still scores like each request alone, the
    /// LoRA adapters' products included, on any thread count.
    func testPrefixSharingAcrossGEMMSegmentsEqualsScoringEachRequestAlone() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let config = TinyModels.config(.qwen2, tied: false)
        let model = TinyModels.model(config, seed: 6)
        let lora = LoRAAdapters(config: LoRAConfig(rank: 4, alpha: 8), model: config, seed: 7)
        var rng = SeededGenerator(seed: 8)
        for adapter in lora.adapters {
            for i in 0..<adapter.outFeatures * 4 { lora.parameters.pointer[adapter.b + i] = 0.1 * rng.nextNormal() }
        }
        model.adapters = lora
        var requests: [ScoringRequest] = []
        for p in 0..<3 {
            let prompt = TinyModels.randomTokens(37 + p, vocab: config.vocabSize, seed: 40 + UInt64(p))
            for r in 0..<5 {
                let response = TinyModels.randomTokens(61 + 5 * r + p, vocab: config.vocabSize, seed: 50 + UInt64(5 * p + r))
                requests.append(ScoringRequest(prompt: prompt, response: response))
            }
        }
        let rows = requests.reduce(0) { $0 + $1.tokens.count }
        XCTAssertGreaterThan(rows, 1000)   // more than one segment of about 512 rows when shared
        let alone = try requests.map { try model.logProbs([$0])[0] }
        var first: [[Float]]?
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            let shared = try model.logProbs(requests, sharePrefixes: true)
            XCTAssertLessThan(maxAbsDifference(shared, alone), 1e-5, "\(threads) threads")
            if let first { XCTAssertEqual(shared, first, "\(threads) threads") } else { first = shared }
        }
    }

    func testBF16WeightsTrackFP32AndStayBatchInvariant() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let config = TinyModels.config(.qwen2, tied: false)
        let model = TinyModels.model(config, seed: 9)
        let requests = sharedPromptRequests(vocab: config.vocabSize)
        let f32 = try model.logProbs(requests)
        model.weightPrecision = .bf16
        XCTAssertEqual(model.weightPrecision, .bf16)
        let bf16 = try model.logProbs(requests)
        let deviation = maxAbsDifference(bf16, f32)
        // bf16 rounds weights and activations (8 bits of mantissa): visible, but small.
        XCTAssertGreaterThan(deviation, 0)
        XCTAssertLessThan(deviation, 0.1)
        // Batch-invariant and thread-count independent, like fp32.
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            XCTAssertEqual(try requests.map { try model.logProbs([$0])[0] }, bf16, "\(threads) threads")
        }
        // Sharing a prompt also works on bf16 weights, up to a flipped bf16 rounding. The shared path's
        // attention multiplies products of other shapes, so its fp32 activations differ from the
        // unshared ones in the last bits (≤ 2.4e-6 here), and which last bits depends on the kernels
        // OpenBLAS picks for the CPU. When such a difference crosses a bf16 rounding boundary of an
        // activation that feeds a bf16 product, that activation moves by 2^-8 of itself. Measured on
        // this model: 0 with OpenBLAS's AVX-512 kernels, 0.0050 with its Haswell (AVX2) kernels,
        // against a bf16-vs-fp32 deviation of 0.033. So: well under bf16's own error, and sharing
        // adds nothing to the distance from the fp32 reference beyond that.
        let shared = try model.logProbs(requests, sharePrefixes: true)
        XCTAssertLessThan(maxAbsDifference(shared, bf16), deviation / 4)
        XCTAssertLessThan(maxAbsDifference(shared, f32), deviation * 1.25)
        model.weightPrecision = .f32
        XCTAssertEqual(try model.logProbs(requests), f32)
    }

    /// The bf16 forward equals the fp32 forward of the same model with its matrix weights rounded to
    /// bf16, up to the activations' rounding: what remains is much smaller than bf16 vs fp32 weights.
    func testBF16DeviationComesFromRoundingWeights() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config, seed: 3)
        let requests = sharedPromptRequests(vocab: config.vocabSize)
        let f32 = try model.logProbs(requests)
        model.weightPrecision = .bf16
        let bf16 = try model.logProbs(requests)
        model.weightPrecision = .f32
        for t in model.layout.tensors where !t.name.hasSuffix("norm.weight") {
            HalfPrecision.roundThroughBF16(model.weights + t.offset, into: model.weights + t.offset, count: t.count)
        }
        let rounded = try model.logProbs(requests)
        XCTAssertLessThan(maxAbsDifference(bf16, rounded), maxAbsDifference(bf16, f32))
    }

    /// Generation is fp32 whatever the scoring precision: its prefill skips the bf16 weights.
    func testGenerationIgnoresTheBF16ScoringWeights() throws {
        let config = TinyModels.config()
        let model = TinyModels.model(config, seed: 7)
        let request = GenerationRequest(prompt: TinyModels.randomTokens(70, vocab: config.vocabSize, seed: 4), maxNewTokens: 12,
                                        sampling: .greedy, endTokens: [])
        let f32 = try Generator(model: model).generate([request])
        model.weightPrecision = .bf16
        XCTAssertEqual(try Generator(model: model).generate([request]), f32)
    }
}
