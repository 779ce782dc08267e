import Foundation
import ModelFiles
import Transformer

/// A PPO run's checkpoints: written atomically every `checkpointEvery` steps, and the newest one
/// restored exactly by `--resume`.
extension PPOTrainer {
    /// The actor in Hugging Face layout (adapters merged) — the SRPPO policy — plus under
    /// training-state/ the critic, value head, optimizers, adapters and trainer state.
    public func saveCheckpoint() throws {
        try run.writeTrainingCheckpoint(step: state.step, keep: config.keepCheckpoints, policy: actor.mergingAdapters(),
                                        extraFiles: writeExtraFiles, state: state) { s in
            try trainedActor.save(stateFolder: s)
            try trainedCritic.save(stateFolder: s, weightsFolder: s + "/critic")
            try SafetensorsWriter.write([.init(name: "value_head", shape: [valueHead.width + 1], buffer: valueHead.parameters)], to: s + "/value-head.safetensors")
            try headOptimizer.save(to: s + "/value-head-optimizer.safetensors")
        }
    }

    /// The policy as it is now (adapters merged) into <run>/policy-step-N (`savePolicyAt`).
    func savePolicy() throws {
        try run.writeModel(named: RunFolder.policyName(step: state.step)) { folder in
            try HuggingFaceExport.save(actor.mergingAdapters(), to: folder)
            try writeExtraFiles(folder)
        }
    }

    /// Restores the newest checkpoint; refuses one made against different frozen models.
    @discardableResult
    public func resume() throws -> Int {
        guard let (latest, s, saved) = try run.newestTrainingState(PPOState.self) else { return 0 }
        guard saved.frozen == scorer.models else {
            throw TrainingError.resumeMismatch("the run was trained against PT \(saved.frozen.pt.prefix(12)) and SFT \(saved.frozen.sft.prefix(12)), the scorer now serves PT \(scorer.models.pt.prefix(12)) and SFT \(scorer.models.sft.prefix(12))")
        }
        guard saved.order.count == prompts.count else {
            throw TrainingError.resumeMismatch("the run used \(saved.order.count) prompts, the data now has \(prompts.count)")
        }
        try trainedActor.restore(stateFolder: s, weightsFolder: latest)
        try trainedCritic.restore(stateFolder: s, weightsFolder: s + "/critic")
        let head = try SafetensorsFile(path: s + "/value-head.safetensors")
        guard let info = head.tensors["value_head"], info.shape == [valueHead.width + 1] else {
            throw TrainingError.badRun(path: s + "/value-head.safetensors", problem: "value_head missing or of the wrong size")
        }
        try head.read(info, into: valueHead.parameters.pointer)
        try headOptimizer.load(from: s + "/value-head-optimizer.safetensors")
        state = saved
        if collective.isLeader { try run.truncateMetrics(after: state.step) }
        return state.step
    }

    private var trainedActor: TrainedModel { TrainedModel(model: actor, optimizer: actorOptimizer, prefix: "actor-") }
    private var trainedCritic: TrainedModel { TrainedModel(model: critic, optimizer: criticOptimizer, prefix: "critic-") }
}
