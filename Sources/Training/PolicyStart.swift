import Transformer

/// Where the actor and the critic get the SFT weights they start from.
///
/// A fully fine-tuned network writes every parameter, so it needs weights of its own. A LoRA network
/// only reads its base, so one base can serve the actor, the critic and, when it is a weight image
/// mapped read-only, the daemon and every other trainer on the host: one physical copy.
public struct PolicyStart {
    public let config: LlamaConfig
    /// What the weights come from, for logs ("runs/sft/model", "image 'sft' of /run/srppod/images.sock").
    public let origin: String
    /// A writable model with the SFT weights that nothing else uses.
    let makePrivate: () throws -> LlamaModel
    /// A model with the SFT weights that others may share; nobody writes through it.
    let makeShared: () throws -> LlamaModel

    public init(config: LlamaConfig, origin: String, makePrivate: @escaping () throws -> LlamaModel,
                makeShared: @escaping () throws -> LlamaModel) {
        self.config = config
        self.origin = origin
        self.makePrivate = makePrivate
        self.makeShared = makeShared
    }

    /// From a model loaded in this process: heap copies for full fine-tuning; the model's own
    /// parameters as the LoRA base (the in-process scorer only reads them too).
    public static func copies(of sft: LlamaModel, origin: String = "the SFT model") -> PolicyStart {
        PolicyStart(config: sft.config, origin: origin, makePrivate: {
            let model = LlamaModel(config: sft.config)
            model.copyParameters(from: sft)
            return model
        }, makeShared: { sft })
    }

    /// The actor's or the critic's starting network: a private model, or with `lora` a new model
    /// object on the shared base's parameters (fp32, or a bf16 image's matrices) carrying its own
    /// adapters (seeded by `seed`).
    func network(lora: LoRAConfig?, seed: UInt64) throws -> LlamaModel {
        guard let lora else { return try makePrivate() }
        let model = try makeShared().sharingParameters()
        model.adapters = LoRAAdapters(config: lora, model: model.config, seed: seed)
        return model
    }
}
