import Client
import Foundation
import Reward
import Training
import Transformer
import WeightImage
import XCTest

/// Actor and critic started from a weight image (as `srppo ppo --daemon` does with the daemon's SFT
/// image) train exactly as from heap copies of the same SFT, without writing the image: LoRA networks
/// share one read-only mapping as their base, fully trained ones map it copy-on-write.
final class PolicyStartTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "policy-start-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func train(_ start: PolicyStart, lora: LoRAConfig?) throws -> (PPOTrainer, [[String: Double]]) {
        let (pt, sft) = PPOTests.pair
        var c = PPOTests.config(steps: 3)
        c.promptsPerStep = 4
        c.actorLoRA = lora
        c.criticLoRA = lora
        let trainer = try PPOTrainer(start: start, prompts: PPOTests.prompts(32), scorer: EmbeddedScorer(pt: pt, sft: sft),
                                     sampler: KVCacheSampler(maxBatch: 8), config: c,
                                     run: RunFolder(path: directory + "/run-\(UUID().uuidString)"))
        try trainer.run()
        return (trainer, trainer.run.readMetrics().map(PPOTests.deterministic))
    }

    func imageStart(_ image: WeightImage) throws -> PolicyStart {
        try PolicyStart.image(manifest: image.manifest, origin: "test image") { try image.map(mode: $0) }
    }

    func testLoRANetworksShareOneReadOnlyMappingOfTheImageAndTrainAsOnHeapCopies() throws {
        let sft = PPOTests.pair.sft
        let image = try WeightImage(name: "sft", model: sft, hugePages: .off)
        let lora = LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .up])
        let (onImage, trajectory) = try train(try imageStart(image), lora: lora)
        let (_, expected) = try train(.copies(of: sft), lora: lora)
        XCTAssertEqual(trajectory.count, 3)
        XCTAssertEqual(trajectory, expected, "LoRA on the image's base trained differently from LoRA on heap copies")

        // One mapping under both networks: the image's memory, read-only.
        XCTAssertTrue(onImage.actor.storage === onImage.critic.storage)
        let base = try XCTUnwrap(onImage.actor.storage as? MappedWeightImage)
        XCTAssertEqual(base.mode, .shared)
        XCTAssertEqual(base.manifest.sha256, image.manifest.sha256)
        // The kernel refuses to make it writable (the image is sealed against writes), so no code path
        // of the trainer can change the base another process scores with.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let result = mprotect(UnsafeMutableRawPointer(base.floats), page, PROT_READ | PROT_WRITE)
        let code = errno
        XCTAssertEqual(result, -1)
        XCTAssertEqual(code, EACCES)
        XCTAssertEqual(SHA256.hex(base.bytes), image.manifest.sha256, "the base changed during training")
        withExtendedLifetime(base) {}    // the pointers above read its mapping
    }

    func testFullFineTuningMapsTheImageCopyOnWriteAndTrainsAsOnHeapCopies() throws {
        let sft = PPOTests.pair.sft
        let image = try WeightImage(name: "sft", model: sft, hugePages: .off)
        let (onImage, trajectory) = try train(try imageStart(image), lora: nil)
        let (_, expected) = try train(.copies(of: sft), lora: nil)
        XCTAssertEqual(trajectory, expected, "full fine-tuning from the image trained differently from heap copies")

        // Actor and critic each have their own copy-on-write mapping; both moved, the image did not.
        let actor = try XCTUnwrap(onImage.actor.storage as? MappedWeightImage)
        let critic = try XCTUnwrap(onImage.critic.storage as? MappedWeightImage)
        XCTAssertFalse(actor === critic)
        XCTAssertEqual(actor.mode, .private)
        XCTAssertNotEqual(SHA256.hex(actor.bytes), image.manifest.sha256, "the actor did not train")
        XCTAssertNotEqual(SHA256.hex(critic.bytes), image.manifest.sha256, "the critic did not train")
        let view = try image.map(mode: .shared)
        XCTAssertEqual(SHA256.hex(view.bytes), image.manifest.sha256, "training wrote into the image")
        withExtendedLifetime((view, actor, critic)) {}    // the pointers above read their mappings
    }

    /// A bf16 image (`srppod --dtype bf16`) is a LoRA base: actor and critic share its read-only
    /// mapping and train their adapters over the bf16 weights (its sampling, scoring and updates all
    /// run in bf16). The run moves the adapters and starts where the fp32 run starts, up to bf16's
    /// rounding; full fine-tuning, which would write weights that exist only as bf16, is refused.
    func testABF16ImageIsALoRABaseAndRefusedForFullFineTuning() throws {
        let sft = PPOTests.pair.sft
        let image = try WeightImage(name: "sft", model: sft, dtype: .bf16, hugePages: .off)
        let lora = LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .up])
        let (onImage, trajectory) = try train(try imageStart(image), lora: lora)
        let (_, fp32) = try train(.copies(of: sft), lora: lora)
        XCTAssertEqual(trajectory.count, 3)
        XCTAssertTrue(trajectory.allSatisfy { $0.values.allSatisfy(\.isFinite) })
        XCTAssertNotEqual(trajectory, fp32, "the bf16 base ran as fp32")
        // The first step's rollouts come from the unchanged SFT in either precision: their mean KL to
        // the fp32 SFT (the reward's reference here) is bf16's rounding, not a different policy.
        XCTAssertLessThan(abs(try XCTUnwrap(trajectory[0]["kl_sft"])), 0.05)
        // One base model under both networks, on the image's bf16 matrices; the image is unchanged.
        XCTAssertTrue(onImage.actor.storage === onImage.critic.storage)
        XCTAssertFalse(onImage.actor.hasFP32Matrices)
        XCTAssertFalse(onImage.critic.hasFP32Matrices)
        let view = try image.map(mode: .shared)
        XCTAssertEqual(SHA256.hex(view.bytes), image.manifest.sha256, "the base changed during training")
        withExtendedLifetime(view) {}

        XCTAssertThrowsError(try train(try imageStart(image), lora: nil)) { error in
            XCTAssertTrue("\(error)".contains("holds bf16 weights, which serve as a LoRA base only"), "\(error)")
        }
    }
}
