import Foundation
import ModelFiles
import Transformer

/// A PPO run's checkpoints: written atomically every `checkpointEvery` steps, and the newest one
/// restored exactly by `--resume`.
extension PPOTrainer {
    /// The actor in Hugging Face layout (adapters merged) — the SRPPO policy — plus under
    /// training-state/ the critic, value head, optimizers, adapters and trainer state.
    public func saveCheckpoint() throws {
        try run.writeCheckpoint(step: state.step, keep: config.keepCheckpoints) { folder in
            try HuggingFaceExport.save(actor.mergingAdapters(), to: folder)
            try writeExtraFiles(folder)
            let s = folder + "/training-state"
            try FileManager.default.createDirectory(atPath: s, withIntermediateDirectories: true)
            if let adapters = actor.adapters { try adapters.save(to: s + "/actor-adapters") }
            if let adapters = critic.adapters {
                try adapters.save(to: s + "/critic-adapters")
            } else {
                try HuggingFaceExport.save(critic, to: s + "/critic")
            }
            try SafetensorsWriter.write([.init(name: "value_head", shape: [valueHead.width + 1], buffer: valueHead.parameters)], to: s + "/value-head.safetensors")
            try actorOptimizer.save(to: s + "/actor-optimizer.safetensors")
            try criticOptimizer.save(to: s + "/critic-optimizer.safetensors")
            try headOptimizer.save(to: s + "/value-head-optimizer.safetensors")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try AtomicFile.write(encoder.encode(state), to: s + "/trainer.json")
        }
    }

    /// Restores the newest checkpoint; refuses one made against different frozen models.
    @discardableResult
    public func resume() throws -> Int {
        guard let latest = run.checkpoints().last else { return 0 }
        let s = latest.path + "/training-state"
        guard let data = FileManager.default.contents(atPath: s + "/trainer.json") else {
            throw TrainingError.badRun(path: s + "/trainer.json", problem: "missing")
        }
        let saved = try JSONDecoder().decode(PPOState.self, from: data)
        guard saved.frozen == scorer.models else {
            throw TrainingError.resumeMismatch("the run was trained against PT \(saved.frozen.pt.prefix(12)) and SFT \(saved.frozen.sft.prefix(12)), the scorer now serves PT \(scorer.models.pt.prefix(12)) and SFT \(scorer.models.sft.prefix(12))")
        }
        guard saved.order.count == prompts.count else {
            throw TrainingError.resumeMismatch("the run used \(saved.order.count) prompts, the data now has \(prompts.count)")
        }
        if let adapters = actor.adapters {
            try adapters.load(from: s + "/actor-adapters")
        } else {
            try restore(actor, from: latest.path)
        }
        if let adapters = critic.adapters {
            try adapters.load(from: s + "/critic-adapters")
        } else {
            try restore(critic, from: s + "/critic")
        }
        let head = try SafetensorsFile(path: s + "/value-head.safetensors")
        guard let info = head.tensors["value_head"], info.shape == [valueHead.width + 1] else {
            throw TrainingError.badRun(path: s + "/value-head.safetensors", problem: "value_head missing or of the wrong size")
        }
        try head.read(info, into: valueHead.parameters.pointer)
        try actorOptimizer.load(from: s + "/actor-optimizer.safetensors")
        try criticOptimizer.load(from: s + "/critic-optimizer.safetensors")
        try headOptimizer.load(from: s + "/value-head-optimizer.safetensors")
        state = saved
        if collective.isLeader { try run.truncateMetrics(after: state.step) }
        return state.step
    }

    private func restore(_ model: LlamaModel, from path: String) throws {
        let saved = try ModelLoader.load(path: path).model
        guard saved.config == model.config else { throw TrainingError.resumeMismatch("\(path) holds a different architecture") }
        model.copyParameters(from: saved)
    }
}
