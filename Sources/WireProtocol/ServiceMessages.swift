import Foundation
import Transformer

/// `GET /v1/models`: what the daemon serves and the limits a client must respect.
public struct ModelsResponse: Codable, Equatable, Sendable {
    public var version: Int
    /// PT first, then SFT. New score requests use these revisions.
    public var models: [ModelDescription]
    public var limits: Limits
    /// The tokenizer text requests are encoded with (absent when the daemon has none: ids only).
    public var tokenizer: TokenizerDescription?
    /// The absolute path of the socket that hands out these models' weight images (absent when the
    /// daemon has none): trainers start actor and critic from it.
    public var imageSocket: String?

    enum CodingKeys: String, CodingKey {
        case version, models, limits, tokenizer, imageSocket = "image_socket"
    }

    public init(models: [ModelDescription], limits: Limits, tokenizer: TokenizerDescription? = nil, imageSocket: String? = nil) {
        version = WireProtocol.version
        self.models = models
        self.limits = limits
        self.tokenizer = tokenizer
        self.imageSocket = imageSocket
    }
}

/// The daemon's tokenizer (from the SFT checkpoint, else PT's, else `--tokenizer`).
public struct TokenizerDescription: Codable, Equatable, Sendable {
    /// Where it was read from.
    public var source: String
    public var vocabSize: Int
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    /// Whether plain-text prompts get BOS first.
    public var addsBos: Bool
    /// Whether chat (`messages`) requests can be encoded; the end-of-turn token closing chat responses.
    public var chatTemplate: Bool
    public var endOfTurn: String?

    enum CodingKeys: String, CodingKey {
        case source, vocabSize = "vocab_size", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", addsBos = "adds_bos"
        case chatTemplate = "chat_template", endOfTurn = "end_of_turn"
    }

    public init(source: String, vocabSize: Int, bosTokenId: Int?, eosTokenId: Int?, addsBos: Bool, chatTemplate: Bool, endOfTurn: String?) {
        self.source = source
        self.vocabSize = vocabSize
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.addsBos = addsBos
        self.chatTemplate = chatTemplate
        self.endOfTurn = endOfTurn
    }
}

/// One served model.
public struct ModelDescription: Codable, Equatable, Sendable {
    /// "pt" or "sft".
    public var role: String
    /// Name on the weight-image socket, sha256 and revision.
    public var identity: ModelIdentity
    /// The checkpoint the image was built from, as configured (informational).
    public var source: String?
    /// "file" (loaded from the checkpoint at start or reload) or "fd-store" (re-mapped from the image
    /// systemd kept for the previous run of the daemon).
    public var loadedFrom: String
    /// Size of the image's data region in bytes.
    public var dataBytes: Int
    /// Element type of the image and of the daemon's scoring with it: "f32" or "bf16".
    public var dtype: String
    /// The memory behind the image, in words ("hugetlb, 2048 KiB pages").
    public var backing: String
    /// The architecture, in the engine's encoding (the same object as the weight-image manifest's
    /// `config`); `eosTokenIds` decides `truncated`, `vocabSize` the valid token ids.
    public var config: LlamaConfig

    enum CodingKeys: String, CodingKey {
        case role, identity, source, loadedFrom = "loaded_from", dataBytes = "data_bytes", dtype, backing, config
    }

    public init(role: String, identity: ModelIdentity, source: String?, loadedFrom: String, dataBytes: Int, dtype: String,
                backing: String, config: LlamaConfig) {
        self.role = role
        self.identity = identity
        self.source = source
        self.loadedFrom = loadedFrom
        self.dataBytes = dataBytes
        self.dtype = dtype
        self.backing = backing
        self.config = config
    }
}

/// Sizes the daemon accepts; a request beyond one is refused with a typed error naming it.
public struct Limits: Codable, Equatable, Sendable {
    /// Largest request body (bytes): `body_too_large` beyond.
    public var maxBodyBytes: Int
    /// Most items in one score request: `too_many_items` beyond.
    public var maxItems: Int
    /// Most tokens (prompt + response, summed over items) in one score request: `too_many_tokens` beyond.
    public var maxRequestTokens: Int
    /// Longest sequence (prompt + response): the model's context. `too_long` beyond.
    public var maxSequenceTokens: Int
    /// Deepest JSON nesting of a body: `too_deep` beyond.
    public var maxJSONDepth: Int
    /// Tokens the scheduler puts in one forward pass (a longer sequence runs alone).
    public var batchTokens: Int
    /// Tokens waiting in the queue, all clients together, before new requests get `busy`.
    public var maxQueueTokens: Int
    /// Deadline given to a request without `deadline_ms`, and the most a request may ask for (ms).
    public var defaultDeadlineMs: Int
    public var maxDeadlineMs: Int
    /// `/get_reward` only: OpenRLHF sends a whole rollout batch in one request, and cannot split it.
    /// Its body, queries and tokens may reach these (far larger) limits; the daemon streams such a
    /// batch through the scheduler in pieces of `maxItems` items and `maxRequestTokens` tokens.
    public var maxRewardBodyBytes: Int
    public var maxRewardQueries: Int
    public var maxRewardTokens: Int

    enum CodingKeys: String, CodingKey {
        case maxBodyBytes = "max_body_bytes", maxItems = "max_items", maxRequestTokens = "max_request_tokens"
        case maxSequenceTokens = "max_sequence_tokens", maxJSONDepth = "max_json_depth", batchTokens = "batch_tokens"
        case maxQueueTokens = "max_queue_tokens", defaultDeadlineMs = "default_deadline_ms", maxDeadlineMs = "max_deadline_ms"
        case maxRewardBodyBytes = "max_reward_body_bytes", maxRewardQueries = "max_reward_queries", maxRewardTokens = "max_reward_tokens"
    }

    public init(maxBodyBytes: Int, maxItems: Int, maxRequestTokens: Int, maxSequenceTokens: Int, maxJSONDepth: Int,
                batchTokens: Int, maxQueueTokens: Int, defaultDeadlineMs: Int, maxDeadlineMs: Int,
                maxRewardBodyBytes: Int, maxRewardQueries: Int, maxRewardTokens: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxItems = maxItems
        self.maxRequestTokens = maxRequestTokens
        self.maxSequenceTokens = maxSequenceTokens
        self.maxJSONDepth = maxJSONDepth
        self.batchTokens = batchTokens
        self.maxQueueTokens = maxQueueTokens
        self.defaultDeadlineMs = defaultDeadlineMs
        self.maxDeadlineMs = maxDeadlineMs
        self.maxRewardBodyBytes = maxRewardBodyBytes
        self.maxRewardQueries = maxRewardQueries
        self.maxRewardTokens = maxRewardTokens
    }
}

/// `GET /v1/health`.
public struct HealthResponse: Codable, Equatable, Sendable {
    public var version: Int
    /// Always "ok": an answer at all means the process is alive.
    public var status: String
    public var pid: Int
    public var uptimeS: Double

    enum CodingKeys: String, CodingKey {
        case version, status, pid, uptimeS = "uptime_s"
    }

    public init(pid: Int, uptimeS: Double) {
        version = WireProtocol.version
        status = "ok"
        self.pid = pid
        self.uptimeS = uptimeS
    }
}

/// `GET /v1/ready` (200 when `ready`, else 503).
public struct ReadyResponse: Codable, Equatable, Sendable {
    public var version: Int
    public var ready: Bool
    /// "loading", "serving", "reloading" (still serving the previous revision) or "stopping".
    public var state: String
    /// The models new requests get (absent while loading).
    public var models: ModelPairIdentity?
    /// Items and tokens waiting in the scheduler's queue.
    public var queueItems: Int
    public var queueTokens: Int
    /// Items and tokens of the batch being computed now (0 when idle).
    public var runningItems: Int?
    public var runningTokens: Int?

    enum CodingKeys: String, CodingKey {
        case version, ready, state, models, queueItems = "queue_items", queueTokens = "queue_tokens"
        case runningItems = "running_items", runningTokens = "running_tokens"
    }

    public init(ready: Bool, state: String, models: ModelPairIdentity?, queueItems: Int, queueTokens: Int, runningItems: Int = 0,
                runningTokens: Int = 0) {
        self.runningItems = runningItems
        self.runningTokens = runningTokens
        version = WireProtocol.version
        self.ready = ready
        self.state = state
        self.models = models
        self.queueItems = queueItems
        self.queueTokens = queueTokens
    }
}
