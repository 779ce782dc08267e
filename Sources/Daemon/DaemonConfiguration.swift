import Foundation
import WeightImage
import WireProtocol

/// Settings of a daemon (srppod's command line).
public struct DaemonConfiguration: Sendable {
    public var ptPath: String
    public var sftPath: String
    /// Sockets to bind when systemd does not pass them (`http`, `images`).
    public var socketPath: String?
    public var imageSocketPath: String?
    /// Mode and group of socket files the daemon binds itself (systemd's SocketMode=/SocketGroup= otherwise).
    public var socketMode: UInt32 = 0o660
    public var socketGroup: UInt32?
    /// A TCP listener (loopback unless another host is given); none unless configured.
    public var tcpHost = "127.0.0.1"
    public var tcpPort: Int?
    /// Where the tokenizer for text requests comes from (default: the SFT checkpoint, else PT's), and
    /// a chat template file to use instead of the model's own.
    public var tokenizerPath: String?
    public var chatTemplatePath: String?
    /// What `/get_reward` gives a response cut off before EOS: minus this (the trainer's default).
    public var truncationPenalty = 1.0
    /// When either is non-empty, only peers with one of these uids or gids (or the daemon's own uid) may
    /// score or attach images; others get 403 `permission_denied`. TCP peers have no credentials and are
    /// then refused too.
    public var allowedUIDs: Set<UInt32> = []
    public var allowedGIDs: Set<UInt32> = []
    public var hugePages: HugePagePolicy = .try
    /// Element type of the images built from checkpoints, hence of scoring: f32, or bf16 (half the
    /// memory, bf16 log-probs). nil: f32 from checkpoints, image files as they are.
    public var dtype: WeightDType?
    /// `maxSequenceTokens` is replaced by the models' context once loaded.
    public var limits = Limits(maxBodyBytes: 8 << 20, maxItems: 512, maxRequestTokens: 131_072, maxSequenceTokens: 0,
                               maxJSONDepth: 8, batchTokens: 2048, maxQueueTokens: 262_144, defaultDeadlineMs: 300_000,
                               maxDeadlineMs: 3_600_000, maxRewardBodyBytes: 128 << 20, maxRewardQueries: 32_768,
                               maxRewardTokens: 8 << 20)
    /// Seconds a request may take to arrive completely, and a connection may sit idle.
    public var requestReadTimeout = 10.0
    public var idleTimeout = 120.0
    public var maxConnections = 512
    /// Answers kept for repeated request ids.
    public var idempotencyCapacity = 10_000
    /// Seconds queued work may take to finish when stopping.
    public var stopGracePeriod = 30.0

    public init(ptPath: String, sftPath: String) {
        self.ptPath = ptPath
        self.sftPath = sftPath
    }

    public var anyAllowList: Bool { !allowedUIDs.isEmpty || !allowedGIDs.isEmpty }
}
