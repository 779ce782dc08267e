import Foundation
import Reward
import Training
import Transformer
import WeightImage

/// What a PPO run (`srppo ppo`) scores with and starts from: the frozen PT and SFT scoring, the SFT
/// model (for its tokenizer and end tokens) and where actor and critic start.
public struct PPOModels {
    public let scorer: RewardScorer
    public let sft: LoadedModel
    public let start: PolicyStart

    /// In-process: PT and SFT loaded from disk, actor and critic copies of SFT.
    public static func inProcess(pt: String, sft sftPath: String, sharePrefixes: Bool) throws -> PPOModels {
        let sft = try ModelLoader.load(path: sftPath)
        let scorer = try EmbeddedScorer(pt: try ModelLoader.load(path: pt).model, sft: sft.model)
        scorer.sharePrefixes = sharePrefixes
        return PPOModels(scorer: scorer, sft: sft, start: .copies(of: sft.model, origin: sftPath))
    }

    /// Through a daemon: its scoring and, unless `sftFromDisk`, its SFT image (from `imageSocket`, by
    /// default the one the daemon names), which must be the SFT the reward uses. `sft` is the SFT
    /// checkpoint on disk when given: its content hash must equal the daemon's. `log` hears which
    /// client scores and any fallback to disk.
    public static func daemon(socket: String, clientName: String, sft sftPath: String?, sftFromDisk: Bool, imageSocket: String?,
                              log: (String) -> Void) throws -> PPOModels {
        let scorer = try DaemonScorer(socketPath: socket, clientName: clientName)
        log("scoring through \(socket) as client \(clientName)")
        var local: LoadedModel?
        if let sftPath {
            // The guard: the reward's SFT is the model the actor starts from.
            let loaded = try ModelLoader.load(path: sftPath)
            let hash = WeightImage.contentHash(of: loaded.model, dtype: scorer.sftDType)
            guard scorer.models.sft == hash else {
                throw DaemonClientError.invalidArgument(
                    "the daemon serves SFT \(scorer.models.sft.prefix(12)), but --sft \(sftPath) is \(hash.prefix(12)): the actor must start from the reward's SFT")
            }
            if sftFromDisk { return PPOModels(scorer: scorer, sft: loaded, start: .copies(of: loaded.model, origin: sftPath)) }
            local = loaded
        } else if sftFromDisk {
            throw DaemonClientError.invalidArgument("--sft-from-disk needs --sft PATH")
        }
        guard let images = imageSocket ?? scorer.imageSocket else {
            guard let local, let sftPath else {
                throw DaemonClientError.invalidArgument(
                    "the daemon at \(socket) hands out no weight images (srppod --image-socket PATH): give --sft PATH to start actor and critic from disk, or --daemon-images PATH")
            }
            log("the daemon hands out no weight images: actor and critic start from --sft \(sftPath) on disk")
            return PPOModels(scorer: scorer, sft: local, start: .copies(of: local.model, origin: sftPath))
        }
        let imageName = scorer.servedSFT.identity.image
        let received = try WeightImageClient(socketPath: images).fetch(name: imageName, expectedSHA256: scorer.models.sft)
        let start = try PolicyStart.image(received, origin: "image '\(imageName)' of \(images)")
        guard let checkpoint = sftPath ?? scorer.servedSFT.source else {
            throw DaemonClientError.invalidArgument("the daemon does not say which checkpoint its SFT came from: give --sft PATH for the tokenizer")
        }
        let sft = LoadedModel(model: try received.map(mode: .shared).makeModel(), source: try ModelLoader.source(path: checkpoint))
        return PPOModels(scorer: scorer, sft: sft, start: start)
    }

    /// A trainer's name for the daemon: ppo-<run folder name>-<pid>, cut to the characters and
    /// length the daemon accepts.
    public static func defaultClientName(out: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let base = String(URL(fileURLWithPath: out).lastPathComponent.filter(allowed.contains).prefix(40))
        return "ppo-\(base.isEmpty ? "run" : base)-\(getpid())"
    }
}
