import Foundation
import Compute
import TestSupport
import Training
import Transformer
import XCTest

final class SFTTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "sft-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    static let config = LlamaConfig(vocabSize: 40, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                    maxPositions: 64, tieWordEmbeddings: true, bosTokenId: 1, eosTokenIds: [2])

    static func model(seed: UInt64 = 1) -> LlamaModel {
        TinyModels.model(config, seed: seed, scale: 0.05, normJitter: nil)
    }

    /// A learnable task: the response repeats the prompt's tokens reversed, then EOS.
    static func examples(_ count: Int, seed: UInt64) -> [TokenizedExample] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { i in
            let body = (0..<4).map { _ in Int32(3 + rng.next() % 37) }
            return TokenizedExample(prompt: [1] + body, response: body.reversed() + [2], source: "test:\(i)")
        }
    }

    private func config(steps: Int = 0) -> SFTConfig {
        var c = SFTConfig()
        c.epochs = 3
        c.batchSize = 8
        c.microBatchSize = 4
        c.learningRate = 3e-3
        c.warmupRatio = 0.1
        c.evalEvery = 5
        c.checkpointEvery = 5
        c.keepCheckpoints = 2
        return c
    }

    func testSFTLowersHeldOutLossAndWritesTheRun() throws {
        let run = try RunFolder(path: directory + "/run")
        var c = config()
        c.epochs = 8
        let trainer = try SFTTrainer(model: Self.model(), examples: Self.examples(120, seed: 3), config: c, run: run)
        XCTAssertEqual(trainer.heldOut.count, 12)
        let before = try trainer.evaluate()
        try trainer.run()
        let after = try trainer.evaluate()
        XCTAssertLessThan(after, before * 0.8, "held-out loss \(before) → \(after)")
        let metrics = run.readMetrics()
        XCTAssertEqual(metrics.filter { $0["loss"] != nil }.count, trainer.totalSteps)
        XCTAssertEqual(metrics.first?["step"] as? Int, 0)
        XCTAssertNotNil(metrics.first?["eval_loss"])
        // keep-2: the last two checkpoints, each a loadable Hugging Face folder that scores the same.
        let checkpoints = run.checkpoints()
        XCTAssertEqual(trainer.totalSteps, 112)
        XCTAssertEqual(checkpoints.map(\.step), [110, 112])
        let reloaded = try ModelLoader.load(path: checkpoints.last!.path).model
        let probe = trainer.heldOut.map { ScoringRequest(prompt: $0.tokens.prompt, response: $0.tokens.response) }
        let a = try trainer.model.logProbs(probe).joined(), b = try reloaded.logProbs(probe).joined()
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5) }
    }

    /// Stopping after k steps and resuming gives exactly the uninterrupted trajectory.
    private func checkResume(lora: LoRAConfig?) throws {
        var c = config()
        c.lora = lora
        let examples = Self.examples(60, seed: 4)
        let straight = try SFTTrainer(model: Self.model(), examples: examples, config: c, run: RunFolder(path: directory + "/straight-\(lora != nil)"))
        try straight.run()

        let path = directory + "/resumed-\(lora != nil)"
        let first = try SFTTrainer(model: Self.model(), examples: examples, config: c, run: RunFolder(path: path))
        try first.run(maxSteps: 7)  // checkpoint at 5; steps 6 and 7 are lost as if killed
        let second = try SFTTrainer(model: Self.model(), examples: examples, config: c, run: RunFolder(path: path))
        XCTAssertEqual(try second.resume(), 5)
        try second.run()

        let losses = { (run: RunFolder) in run.readMetrics().compactMap { m in (m["loss"] as? Double).map { (m["step"] as! Int, $0) } } }
        let a = losses(straight.run), b = losses(second.run)
        XCTAssertEqual(a.map(\.0), b.map(\.0))
        XCTAssertEqual(a.map(\.1), b.map(\.1))
        XCTAssertEqual(a.count, straight.totalSteps)
    }

    func testResumeContinuesExactlyFullFineTuning() throws { try checkResume(lora: nil) }

    func testResumeContinuesExactlyWithLoRA() throws { try checkResume(lora: LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .up])) }

    func testFailedCheckpointLeavesThePreviousIntact() throws {
        let run = try RunFolder(path: directory + "/ckpt")
        try run.writeCheckpoint(step: 1, keep: 3) { try Data("one".utf8).write(to: URL(fileURLWithPath: $0 + "/file")) }
        struct DiskFull: Error {}
        XCTAssertThrowsError(try run.writeCheckpoint(step: 2, keep: 3) { folder in
            try Data("half".utf8).write(to: URL(fileURLWithPath: folder + "/file"))
            throw DiskFull()
        })
        XCTAssertEqual(run.checkpoints().map(\.step), [1])
        XCTAssertEqual(try String(contentsOfFile: run.checkpoints()[0].path + "/file", encoding: .utf8), "one")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.checkpointsPath), ["step-000001"])
    }
}
