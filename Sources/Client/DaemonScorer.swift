import Foundation
import Reward
import WeightImage
import WireProtocol

/// The daemon side of the `RewardScorer` seam: PT and SFT held by srppod, scored over its socket. The
/// answers equal `EmbeddedScorer`'s bit for bit (the engine's scoring is batch-invariant, and the
/// daemon's images are the same bytes).
///
/// The frozen models are fixed when the scorer is made: if the daemon later serves another SFT
/// revision (reloaded under the run), scoring fails with `modelsChanged` instead of mixing rewards of
/// two models in one run.
public final class DaemonScorer: RewardScorer {
    public let client: DaemonClient
    public let models: FrozenModels
    /// The models and revisions, as the daemon names them.
    public let identity: ModelPairIdentity
    public let limits: Limits
    /// Element type of the served SFT image: the dtype its hash is taken in.
    public let sftDType: WeightDType
    /// The served SFT model as the daemon describes it (image name, checkpoint path, architecture).
    public let servedSFT: ModelDescription
    /// The daemon's weight-image socket, when it has one.
    public let imageSocket: String?

    /// Connects as `clientName` (say "ppo-seed3") and reads the served models. `retryBudget`: seconds a
    /// request keeps being retried while the daemon is unreachable, busy or restarting.
    public init(socketPath: String, clientName: String, retryBudget: Double = 120) throws {
        client = try DaemonClient(socketPath: socketPath, clientName: clientName)
        client.retryBudget = retryBudget
        let served = try client.models()
        guard let pt = served.models.first(where: { $0.role == "pt" }), let sft = served.models.first(where: { $0.role == "sft" }) else {
            throw DaemonClientError.unexpectedAnswer(status: 200, body: "models answer without pt and sft")
        }
        identity = ModelPairIdentity(pt: pt.identity, sft: sft.identity)
        models = FrozenModels(pt: pt.identity.sha256, sft: sft.identity.sha256)
        limits = served.limits
        guard let dtype = WeightDType(rawValue: sft.dtype) else {
            throw DaemonClientError.unexpectedAnswer(status: 200, body: "the daemon serves SFT as '\(sft.dtype)' weights, which this client does not know")
        }
        sftDType = dtype
        servedSFT = sft
        imageSocket = served.imageSocket
    }

    public func score(_ requests: [TokenPair]) throws -> [RewardScores] {
        try scoreResults(requests).map { RewardScores(pt: $0.ptLogprobs, sft: $0.sftLogprobs) }
    }

    /// Full results (reward, truncation) in request order, split into requests within the daemon's limits.
    public func scoreResults(_ requests: [TokenPair]) throws -> [ScoreResult] {
        var results: [ScoreResult] = []
        results.reserveCapacity(requests.count)
        for chunk in consecutiveChunks(requests, maxTokens: limits.maxRequestTokens, maxItems: limits.maxItems) {
            let items = chunk.map { ScoreItem(promptIDs: $0.prompt.map(Int.init), responseIDs: $0.response.map(Int.init)) }
            let response = try client.score(items)
            guard response.models.pt.sha256 == identity.pt.sha256, response.models.sft.sha256 == identity.sft.sha256 else {
                throw DaemonClientError.modelsChanged(expected: Self.describe(identity), found: Self.describe(response.models))
            }
            results += response.results
        }
        return results
    }

    /// Results of items given as ids or text (the daemon encodes text), in order, in requests of at
    /// most the daemon's item limit (text items' token counts are not known here).
    public func scoreItems(_ items: [ScoreItem]) throws -> [ScoreResult] {
        var results: [ScoreResult] = []
        var start = 0
        while start < items.count {
            let chunk = Array(items[start..<min(start + limits.maxItems, items.count)])
            let response = try client.score(chunk)
            guard response.models.pt.sha256 == identity.pt.sha256, response.models.sft.sha256 == identity.sft.sha256 else {
                throw DaemonClientError.modelsChanged(expected: Self.describe(identity), found: Self.describe(response.models))
            }
            results += response.results
            start += chunk.count
        }
        return results
    }

    private static func describe(_ pair: ModelPairIdentity) -> String {
        "PT \(pair.pt.sha256.prefix(12)) and SFT \(pair.sft.sha256.prefix(12)) (revision \(pair.sft.revision))"
    }
}
