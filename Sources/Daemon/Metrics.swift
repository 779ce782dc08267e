import Foundation
import WireProtocol

/// The daemon's counters, gauges and histograms, rendered in the Prometheus text format (0.0.4) at
/// GET /metrics. All methods are thread-safe.
public final class Metrics: @unchecked Sendable {
    /// A cumulative histogram with fixed upper bounds.
    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var total = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            total += 1
        }
    }

    private let lock = NSLock()
    private var requests: [String: Int] = [:]          // "endpoint\u{0}status" → count
    private var errors: [ErrorCode: Int] = [:]
    private var latency = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120])
    private var batchItems = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64, 128, 256])
    private var batchTokens = Histogram(bounds: [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384])
    private var tokensScored = 0
    private var computeSeconds = 0.0
    /// Tokens per second of the last batches (exponentially weighted), for the gauge and Retry-After.
    private var recentTokensPerSecond: Double?
    private var replays = 0
    private var cancelledItems = 0
    private var reloads: [String: Int] = [:]           // "ok" / "failed"
    private var connections = 0
    private var peers: Set<String> = []

    public init() {}

    func request(endpoint: String, status: Int) {
        lock.withLock { requests["\(endpoint)\u{0}\(status)", default: 0] += 1 }
    }

    func error(_ code: ErrorCode) {
        lock.withLock { errors[code, default: 0] += 1 }
    }

    func scoreLatency(seconds: Double) {
        lock.withLock { latency.observe(seconds) }
    }

    func batch(items: Int, tokens: Int, seconds: Double) {
        lock.withLock {
            batchItems.observe(Double(items))
            batchTokens.observe(Double(tokens))
            tokensScored += tokens
            computeSeconds += seconds
            if seconds > 0 {
                let rate = Double(tokens) / seconds
                recentTokensPerSecond = recentTokensPerSecond.map { 0.8 * $0 + 0.2 * rate } ?? rate
            }
        }
    }

    /// Scoring speed of recent batches (tokens of both models' forward passes per second of compute).
    var tokensPerSecond: Double? { lock.withLock { recentTokensPerSecond } }

    func replayed() { lock.withLock { replays += 1 } }
    func cancelled(items: Int) { lock.withLock { cancelledItems += items } }
    func reload(succeeded: Bool) { lock.withLock { reloads[succeeded ? "ok" : "failed", default: 0] += 1 } }
    func connectionOpened() { lock.withLock { connections += 1 } }
    func connectionClosed() { lock.withLock { connections -= 1 } }
    var openConnections: Int { lock.withLock { connections } }

    /// Records a client seen for the first time; false when it was seen before.
    func firstSighting(of peer: String) -> Bool {
        lock.withLock { peers.insert(peer).inserted }
    }

    /// The exposition text. `queue` and `models` are read by the caller at the same moment.
    func render(queueItems: Int, queueTokens: Int, queueClients: Int, models: ModelPairIdentity?, uptime: Double) -> String {
        lock.withLock {
            var out = ""
            func family(_ name: String, _ type: String, _ help: String) {
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            }
            func histogram(_ name: String, _ h: Histogram) {
                for (bound, count) in zip(h.bounds, h.counts) { out += "\(name)_bucket{le=\"\(number(bound))\"} \(count)\n" }
                out += "\(name)_bucket{le=\"+Inf\"} \(h.total)\n\(name)_sum \(number(h.sum))\n\(name)_count \(h.total)\n"
            }
            family("srppod_requests_total", "counter", "HTTP requests answered, by endpoint and status.")
            for (key, count) in requests.sorted(by: { $0.key < $1.key }) {
                let parts = key.split(separator: "\u{0}")
                out += "srppod_requests_total{endpoint=\"\(parts[0])\",status=\"\(parts[1])\"} \(count)\n"
            }
            family("srppod_errors_total", "counter", "Error answers, by error code.")
            for code in ErrorCode.allCases { out += "srppod_errors_total{code=\"\(code.rawValue)\"} \(errors[code] ?? 0)\n" }
            family("srppod_score_request_seconds", "histogram", "Score requests, arrival to answer.")
            histogram("srppod_score_request_seconds", latency)
            family("srppod_batch_items", "histogram", "Items per forward batch.")
            histogram("srppod_batch_items", batchItems)
            family("srppod_batch_tokens", "histogram", "Tokens per forward batch.")
            histogram("srppod_batch_tokens", batchTokens)
            family("srppod_tokens_scored_total", "counter", "Tokens scored (prompt and response, each under PT and SFT).")
            out += "srppod_tokens_scored_total \(tokensScored)\n"
            family("srppod_compute_seconds_total", "counter", "Seconds spent in forward passes.")
            out += "srppod_compute_seconds_total \(number(computeSeconds))\n"
            family("srppod_tokens_per_second", "gauge", "Scoring speed of recent batches.")
            out += "srppod_tokens_per_second \(number(recentTokensPerSecond ?? 0))\n"
            family("srppod_queue_items", "gauge", "Items waiting for a batch.")
            out += "srppod_queue_items \(queueItems)\n"
            family("srppod_queue_tokens", "gauge", "Tokens waiting for a batch.")
            out += "srppod_queue_tokens \(queueTokens)\n"
            family("srppod_queue_clients", "gauge", "Clients with items waiting.")
            out += "srppod_queue_clients \(queueClients)\n"
            family("srppod_connections", "gauge", "Open HTTP connections.")
            out += "srppod_connections \(connections)\n"
            family("srppod_replayed_total", "counter", "Score requests answered from the idempotency store.")
            out += "srppod_replayed_total \(replays)\n"
            family("srppod_cancelled_items_total", "counter", "Items dropped before scoring (client gone or deadline passed).")
            out += "srppod_cancelled_items_total \(cancelledItems)\n"
            family("srppod_reloads_total", "counter", "SFT reloads (SIGHUP), by result.")
            for result in ["ok", "failed"] { out += "srppod_reloads_total{result=\"\(result)\"} \(reloads[result] ?? 0)\n" }
            family("srppod_model_info", "gauge", "The models new requests get (value 1).")
            if let models {
                for (role, identity) in [("pt", models.pt), ("sft", models.sft)] {
                    out += "srppod_model_info{role=\"\(role)\",sha256=\"\(identity.sha256)\",revision=\"\(identity.revision)\"} 1\n"
                }
            }
            family("srppod_uptime_seconds", "gauge", "Seconds since the process started.")
            out += "srppod_uptime_seconds \(number(uptime))\n"
            return out
        }
    }

    private func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
