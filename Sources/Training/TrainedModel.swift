import Foundation
import ModelFiles
import Transformer

/// A model being trained with its optimizer: what a checkpoint's training-state/ holds for each
/// trained model (SFT's one model; PPO's actor and critic), written and restored in one place.
struct TrainedModel {
    let model: LlamaModel
    let optimizer: AdamW
    /// Prefix of its files in training-state/: "" (SFT), "actor-", "critic-".
    let prefix: String

    /// training-state/PREFIXadapters (with LoRA) and PREFIXoptimizer.safetensors; the full weights, in
    /// Hugging Face layout, into `weightsFolder` when given (else the checkpoint's root export holds them).
    func save(stateFolder: String, weightsFolder: String? = nil) throws {
        if let adapters = model.adapters {
            try adapters.save(to: stateFolder + "/\(prefix)adapters")
        } else if let weightsFolder {
            try HuggingFaceExport.save(model, to: weightsFolder)
        }
        try optimizer.save(to: stateFolder + "/\(prefix)optimizer.safetensors")
    }

    /// Restores what `save` wrote, the full weights from `weightsFolder`; refuses weights of another
    /// architecture.
    func restore(stateFolder: String, weightsFolder: String) throws {
        if let adapters = model.adapters {
            try adapters.load(from: stateFolder + "/\(prefix)adapters")
        } else {
            let saved = try ModelLoader.load(path: weightsFolder).model
            guard saved.config == model.config else {
                throw TrainingError.resumeMismatch("\(weightsFolder) holds a different architecture than the model being trained")
            }
            model.copyParameters(from: saved)
        }
        try optimizer.load(from: stateFolder + "/\(prefix)optimizer.safetensors")
    }
}
