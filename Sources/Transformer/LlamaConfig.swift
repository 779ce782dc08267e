import Foundation
import ModelFiles

/// Hyper-parameters of a LLaMA-family model (LLaMA 1–3, SmolLM, Qwen2), read from a Hugging Face
/// `config.json` or from GGUF metadata, and written back as a `config.json` that transformers loads.
public struct LlamaConfig: Codable, Equatable, Sendable {
    public enum Architecture: String, Codable, Sendable {
        case llama = "LlamaForCausalLM"
        case qwen2 = "Qwen2ForCausalLM"
    }

    /// RoPE frequency scaling (`rope_scaling` in config.json).
    public enum RopeScaling: Codable, Equatable, Sendable {
        case linear(factor: Double)
        case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int)
    }

    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var rmsNormEps: Double
    public var maxPositions: Int
    public var tieWordEmbeddings: Bool
    /// Biases on the q, k, v projections (Qwen2; LLaMA with `attention_bias`).
    public var qkvBias: Bool
    /// Bias on the output projection (LLaMA with `attention_bias` only).
    public var outputBias: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?

    public var qDim: Int { numHeads * headDim }
    public var kvDim: Int { numKVHeads * headDim }
    /// Width of the fused q, k, v projection output.
    public var qkvDim: Int { qDim + 2 * kvDim }

    public init(architecture: Architecture = .llama, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
                numLayers: Int, numHeads: Int, numKVHeads: Int, headDim: Int? = nil,
                ropeTheta: Double = 10000, ropeScaling: RopeScaling? = nil, rmsNormEps: Double = 1e-5,
                maxPositions: Int = 2048, tieWordEmbeddings: Bool = true, qkvBias: Bool = false,
                outputBias: Bool = false, bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? hiddenSize / numHeads
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.rmsNormEps = rmsNormEps
        self.maxPositions = maxPositions
        self.tieWordEmbeddings = tieWordEmbeddings
        self.qkvBias = qkvBias
        self.outputBias = outputBias
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.padTokenId = padTokenId
    }

    /// Checks the numbers are usable; `source` names the file in the error.
    public func validate(source: String) throws {
        func fail(_ key: String, _ problem: String) -> ModelFileError {
            .badMetadata(path: source, key: key, problem: problem)
        }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", numLayers), ("num_attention_heads", numHeads),
                             ("num_key_value_heads", numKVHeads), ("head_dim", headDim), ("max_position_embeddings", maxPositions)] {
            guard value > 0, value <= 1 << 24 else { throw fail(key, "must be between 1 and \(1 << 24), got \(value)") }
        }
        guard numHeads % numKVHeads == 0 else {
            throw fail("num_key_value_heads", "\(numKVHeads) does not divide num_attention_heads \(numHeads)")
        }
        guard headDim % 2 == 0 else { throw fail("head_dim", "must be even for RoPE, got \(headDim)") }
        guard ropeTheta > 0 else { throw fail("rope_theta", "must be positive") }
        guard rmsNormEps > 0 else { throw fail("rms_norm_eps", "must be positive") }
        for id in eosTokenIds + [bosTokenId, padTokenId].compactMap({ $0 }) where id < 0 || id >= vocabSize {
            throw fail("special token ids", "\(id) is outside the vocabulary of \(vocabSize)")
        }
    }

    // MARK: Hugging Face config.json

    /// Reads a Hugging Face `config.json` (`LlamaForCausalLM` or `Qwen2ForCausalLM`).
    public init(huggingFaceJSON data: Data, source: String) throws {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelFileError.badMetadata(path: source, key: "config.json", problem: "not a JSON object")
        }
        func required(_ key: String) throws -> Int {
            guard let v = json[key] as? Int else {
                throw ModelFileError.badMetadata(path: source, key: key, problem: json[key] == nil ? "missing" : "expected an integer")
            }
            return v
        }
        func optionalNumber(_ key: String) throws -> Double? {
            guard let v = json[key], !(v is NSNull) else { return nil }
            guard let d = (v as? NSNumber)?.doubleValue else {
                throw ModelFileError.badMetadata(path: source, key: key, problem: "expected a number")
            }
            return d
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard let v = json[key], !(v is NSNull) else { return nil }
            guard let i = v as? Int else { throw ModelFileError.badMetadata(path: source, key: key, problem: "expected an integer") }
            return i
        }

        let architectures = json["architectures"] as? [String] ?? []
        let modelType = json["model_type"] as? String
        if architectures.contains(Architecture.qwen2.rawValue) || modelType == "qwen2" {
            architecture = .qwen2
        } else if architectures.contains(Architecture.llama.rawValue) || modelType == "llama" || modelType == "mistral" {
            architecture = .llama
        } else {
            throw ModelFileError.badMetadata(path: source, key: "architectures",
                problem: "unsupported model \(architectures.first ?? modelType ?? "(none)"); supported: LlamaForCausalLM, Qwen2ForCausalLM")
        }
        if json["mlp_bias"] as? Bool == true {
            throw ModelFileError.badMetadata(path: source, key: "mlp_bias", problem: "MLP biases are not supported")
        }
        vocabSize = try required("vocab_size")
        hiddenSize = try required("hidden_size")
        intermediateSize = try required("intermediate_size")
        numLayers = try required("num_hidden_layers")
        numHeads = try required("num_attention_heads")
        numKVHeads = try optionalInt("num_key_value_heads") ?? numHeads
        headDim = try optionalInt("head_dim") ?? hiddenSize / max(numHeads, 1)
        ropeTheta = try optionalNumber("rope_theta") ?? 10000
        rmsNormEps = try optionalNumber("rms_norm_eps") ?? 1e-6
        maxPositions = try optionalInt("max_position_embeddings") ?? 2048
        tieWordEmbeddings = json["tie_word_embeddings"] as? Bool ?? false
        let attentionBias = json["attention_bias"] as? Bool ?? false
        qkvBias = architecture == .qwen2 ? true : attentionBias
        outputBias = architecture == .qwen2 ? false : attentionBias
        bosTokenId = try optionalInt("bos_token_id")
        if let list = json["eos_token_id"] as? [Int] {
            eosTokenIds = list
        } else {
            eosTokenIds = try optionalInt("eos_token_id").map { [$0] } ?? []
        }
        padTokenId = try optionalInt("pad_token_id")
        ropeScaling = try Self.parseRopeScaling(json["rope_scaling"], source: source)
        try validate(source: source)
    }

    private static func parseRopeScaling(_ value: Any?, source: String) throws -> RopeScaling? {
        guard let value, !(value is NSNull) else { return nil }
        guard let dict = value as? [String: Any] else {
            throw ModelFileError.badMetadata(path: source, key: "rope_scaling", problem: "expected an object")
        }
        let type = (dict["rope_type"] ?? dict["type"]) as? String ?? "(none)"
        func number(_ key: String) throws -> Double {
            guard let d = (dict[key] as? NSNumber)?.doubleValue else {
                throw ModelFileError.badMetadata(path: source, key: "rope_scaling.\(key)", problem: "missing or not a number")
            }
            return d
        }
        switch type {
        case "default": return nil
        case "linear": return .linear(factor: try number("factor"))
        case "llama3":
            return .llama3(factor: try number("factor"), lowFreqFactor: try number("low_freq_factor"),
                           highFreqFactor: try number("high_freq_factor"),
                           originalMaxPositions: Int(try number("original_max_position_embeddings")))
        default:
            throw ModelFileError.badMetadata(path: source, key: "rope_scaling", problem: "unsupported type '\(type)' (supported: linear, llama3)")
        }
    }

    /// A `config.json` that Hugging Face transformers loads as this architecture.
    public func huggingFaceJSON() throws -> Data {
        var json: [String: Any] = [
            "architectures": [architecture.rawValue],
            "model_type": architecture == .qwen2 ? "qwen2" : "llama",
            "vocab_size": vocabSize,
            "hidden_size": hiddenSize,
            "intermediate_size": intermediateSize,
            "num_hidden_layers": numLayers,
            "num_attention_heads": numHeads,
            "num_key_value_heads": numKVHeads,
            "head_dim": headDim,
            "hidden_act": "silu",
            "rope_theta": ropeTheta,
            "rms_norm_eps": rmsNormEps,
            "max_position_embeddings": maxPositions,
            "tie_word_embeddings": tieWordEmbeddings,
            "torch_dtype": "float32",
            "initializer_range": 0.02,
            "use_cache": true,
        ]
        if architecture == .llama {
            json["attention_bias"] = qkvBias
            json["mlp_bias"] = false
        }
        if let bosTokenId { json["bos_token_id"] = bosTokenId }
        if eosTokenIds.count == 1 { json["eos_token_id"] = eosTokenIds[0] } else if !eosTokenIds.isEmpty { json["eos_token_id"] = eosTokenIds }
        if let padTokenId { json["pad_token_id"] = padTokenId }
        switch ropeScaling {
        case nil: break
        case let .linear(factor)?:
            json["rope_scaling"] = ["rope_type": "linear", "factor": factor]
        case let .llama3(factor, low, high, original)?:
            json["rope_scaling"] = ["rope_type": "llama3", "factor": factor, "low_freq_factor": low,
                                    "high_freq_factor": high, "original_max_position_embeddings": original]
        }
        return try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    // MARK: GGUF metadata

    /// Reads `<arch>.*` hyper-parameters and special token ids from GGUF metadata.
    public init(gguf: GGUFFile) throws {
        let arch = try gguf.string("general.architecture")
        switch arch {
        case "llama": architecture = .llama
        case "qwen2": architecture = .qwen2
        default:
            throw ModelFileError.badMetadata(path: gguf.path, key: "general.architecture",
                                             problem: "unsupported architecture '\(arch)' (supported: llama, qwen2)")
        }
        hiddenSize = try gguf.integer("\(arch).embedding_length")
        intermediateSize = try gguf.integer("\(arch).feed_forward_length")
        numLayers = try gguf.integer("\(arch).block_count")
        numHeads = try gguf.integer("\(arch).attention.head_count")
        numKVHeads = gguf.metadata["\(arch).attention.head_count_kv"]?.integer ?? numHeads
        headDim = gguf.metadata["\(arch).attention.key_length"]?.integer ?? hiddenSize / max(numHeads, 1)
        ropeTheta = gguf.metadata["\(arch).rope.freq_base"]?.double ?? 10000
        rmsNormEps = try gguf.float("\(arch).attention.layer_norm_rms_epsilon")
        maxPositions = gguf.metadata["\(arch).context_length"]?.integer ?? 2048
        if let v = gguf.metadata["\(arch).vocab_size"]?.integer {
            vocabSize = v
        } else if let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array {
            vocabSize = tokens.count
        } else {
            throw ModelFileError.badMetadata(path: gguf.path, key: "\(arch).vocab_size", problem: "missing (and no tokenizer.ggml.tokens)")
        }
        tieWordEmbeddings = gguf.tensor(named: "output.weight") == nil
        qkvBias = gguf.tensor(named: "blk.0.attn_q.bias") != nil
        outputBias = gguf.tensor(named: "blk.0.attn_output.bias") != nil
        bosTokenId = gguf.metadata["tokenizer.ggml.bos_token_id"]?.integer
        eosTokenIds = gguf.metadata["tokenizer.ggml.eos_token_id"]?.integer.map { [$0] } ?? []
        if let eot = gguf.metadata["tokenizer.ggml.eot_token_id"]?.integer, !eosTokenIds.contains(eot) {
            eosTokenIds.append(eot)
        }
        padTokenId = gguf.metadata["tokenizer.ggml.padding_token_id"]?.integer
        switch gguf.metadata["\(arch).rope.scaling.type"]?.string {
        case nil, "none":
            ropeScaling = nil
        case "linear":
            ropeScaling = .linear(factor: try gguf.float("\(arch).rope.scaling.factor"))
        case let other?:
            throw ModelFileError.badMetadata(path: gguf.path, key: "\(arch).rope.scaling.type", problem: "unsupported type '\(other)'")
        }
        try validate(source: gguf.path)
    }
}
