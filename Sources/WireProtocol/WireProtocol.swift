import Foundation

/// The srppod HTTP API, version 1 (docs/daemon-api.md): HTTP/1.1 with JSON bodies on a Unix socket.
/// These types are the one definition of the messages, shared by the daemon and the Swift client;
/// clients in other languages follow the document.
///
/// Every JSON body the daemon sends has `"version": 1`. Field names are snake_case. Clients must
/// ignore fields they do not know (later versions of this major version may add some).
public enum WireProtocol {
    public static let version = 1

    /// Request paths.
    public enum Path {
        /// POST: per-token log-probs under PT and SFT and the coherent reward (`ScoreRequest` → `ScoreResponse`).
        public static let score = "/v1/score"
        /// GET: the served models and the daemon's limits (`ModelsResponse`).
        public static let models = "/v1/models"
        /// GET: liveness: 200 while the process serves HTTP at all (`HealthResponse`).
        public static let health = "/v1/health"
        /// GET: readiness: 200 when scoring requests are accepted, 503 while loading or stopping (`ReadyResponse`).
        public static let ready = "/v1/ready"
        /// GET: Prometheus text exposition format 0.0.4.
        public static let metrics = "/metrics"
        /// POST: text (or chat messages) to token ids with the models' tokenizer (`TokenizeRequest` → `TokenizeResponse`).
        public static let tokenize = "/v1/tokenize"
        /// POST: token ids to text (`DetokenizeRequest` → `DetokenizeResponse`).
        public static let detokenize = "/v1/detokenize"
        /// POST: OpenRLHF's remote reward model protocol (`RemoteRewardRequest` → `RemoteRewardResponse`).
        /// Unversioned, as OpenRLHF sends it.
        public static let getReward = "/get_reward"
    }

    /// Header naming the calling client (same rules as `ScoreRequest.client`, which takes precedence).
    public static let clientHeader = "X-SRPPO-Client"

    /// Client names and request ids: 1 to 128 characters from letters, digits and `._:@/+=-`.
    public static let maxNameLength = 128
    private static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@/+=-")

    /// Why `text` is not a valid client name or request id (nil when it is).
    public static func nameProblem(_ text: String) -> String? {
        guard (1...maxNameLength).contains(text.count) else { return "must be 1 to \(maxNameLength) characters long" }
        guard text.allSatisfy(nameCharacters.contains) else { return "may only use letters, digits and ._:@/+=-" }
        return nil
    }

    /// JSON encoding used for every body: sorted keys, so equal messages are equal bytes.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

/// The models one scoring answer was computed with.
public struct ModelIdentity: Codable, Equatable, Hashable, Sendable {
    /// The image's name on the weight-image socket (attach it by this name).
    public var image: String
    /// SHA-256 of the model's flat fp32 parameters (the weight image's hash).
    public var sha256: String
    /// 1 for the model loaded at start; +1 for each reload (SIGHUP) that changed the model. PT is never
    /// reloaded and stays at 1.
    public var revision: Int

    public init(image: String, sha256: String, revision: Int) {
        self.image = image
        self.sha256 = sha256
        self.revision = revision
    }
}

/// The PT and SFT models of an answer.
public struct ModelPairIdentity: Codable, Equatable, Hashable, Sendable {
    public var pt: ModelIdentity
    public var sft: ModelIdentity

    public init(pt: ModelIdentity, sft: ModelIdentity) {
        self.pt = pt
        self.sft = sft
    }
}
