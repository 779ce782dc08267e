import Training
import Transformer
import WeightImage

extension PolicyStart {
    /// From a daemon's SFT weight image, received by descriptor (see `image(manifest:origin:map:)`).
    public static func image(_ received: ReceivedImage, origin: String) throws -> PolicyStart {
        try image(manifest: received.manifest, origin: origin) { try received.map(mode: $0) }
    }

    /// From a weight image that `map` maps: a fully trained network maps it copy-on-write (the pages it
    /// writes become its own; the rest stay the image's), and the LoRA base of actor and critic is one
    /// read-only mapping, shared with the daemon and every process attached to the image. A bf16
    /// image serves as a LoRA base only (its fp32 values do not exist to be trained).
    public static func image(manifest: WeightImageManifest, origin: String,
                             map: @escaping (AttachMode) throws -> MappedWeightImage) throws -> PolicyStart {
        var shared: LlamaModel?
        return PolicyStart(config: manifest.config, origin: origin, makePrivate: {
            guard manifest.dtype == .f32 else {
                throw DaemonClientError.invalidArgument(
                    "\(origin) holds \(manifest.dtype.rawValue) weights, which serve as a LoRA base only: give --actor-lora-rank and --critic-lora-rank, run srppod with --dtype f32, or give --sft-from-disk")
            }
            return try map(.private).makeModel()
        }, makeShared: {
            if let shared { return shared }
            let model = try map(.shared).makeModel()
            shared = model
            return model
        })
    }
}
