import Foundation
import WeightImage
import WireProtocol

/// The state HTTP connections share: models, scheduler, idempotency ledger, metrics, log.
package final class ScoringService: @unchecked Sendable {
    enum State: String {
        case loading, serving, reloading, stopping
    }

    let configuration: DaemonConfiguration
    let log: DaemonLog
    let metrics: Metrics
    let scheduler: Scheduler
    let ledger: RequestLedger
    private let startTime = DispatchTime.now()
    private let lock = NSLock()
    private var currentState = State.loading
    private var currentPair: ModelPair?
    /// The weight-image socket's absolute path, for `/v1/models` (set before HTTP answers).
    var imageSocketPath: String?

    init(configuration: DaemonConfiguration, log: DaemonLog, metrics: Metrics) {
        self.configuration = configuration
        self.log = log
        self.metrics = metrics
        scheduler = Scheduler(batchTokens: configuration.limits.batchTokens, maxQueueTokens: configuration.limits.maxQueueTokens,
                              metrics: metrics, log: log)
        ledger = RequestLedger(capacity: configuration.idempotencyCapacity)
    }

    var state: State {
        get { lock.withLock { currentState } }
        set { lock.withLock { currentState = newValue } }
    }

    /// The models new requests get (nil while loading).
    var pair: ModelPair? { lock.withLock { currentPair } }

    /// Makes `pair` the one new requests get; requests admitted before keep theirs.
    func install(_ pair: ModelPair) {
        lock.withLock { currentPair = pair }
    }

    var uptime: Double { Double(DispatchTime.now().uptimeNanoseconds - startTime.uptimeNanoseconds) / 1e9 }

    func limits(for pair: ModelPair) -> Limits {
        var limits = configuration.limits
        limits.maxSequenceTokens = pair.maxPositions
        return limits
    }

    /// Whether a peer may use the daemon (nil: a TCP peer, whose credentials are unknown).
    package func isAllowed(_ peer: PeerCredentials?) -> Bool {
        guard configuration.anyAllowList else { return true }
        guard let peer else { return false }
        return peer.uid == getuid() || configuration.allowedUIDs.contains(peer.uid) || configuration.allowedGIDs.contains(peer.gid)
    }

    func readiness() -> ReadyResponse {
        let (state, pair) = lock.withLock { (currentState, currentPair) }
        let queue = scheduler.queueState
        let ready = pair != nil && (state == .serving || state == .reloading)
        return ReadyResponse(ready: ready, state: state.rawValue, models: pair?.identity, queueItems: queue.items, queueTokens: queue.tokens,
                             runningItems: queue.runningItems, runningTokens: queue.runningTokens)
    }

    func metricsText() -> String {
        let queue = scheduler.queueState
        return metrics.render(queueItems: queue.items, queueTokens: queue.tokens, queueClients: queue.clients,
                              models: pair?.identity, uptime: uptime)
    }
}
