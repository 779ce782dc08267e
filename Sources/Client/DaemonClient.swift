import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WireProtocol

/// A client of srppod (docs/daemon-api.md), blocking and thread-safe (one request at a time per
/// instance; make one per thread for concurrency). Each instance names itself: the daemon shares its
/// scheduler fairly between client names.
///
/// Score requests carry an id; when the connection fails or the daemon answers with a retryable error
/// (busy, not ready, shutting down) the same request is sent again with the same id, after the wait
/// the daemon asked for (Retry-After) or an exponential backoff, until `retryBudget` seconds have
/// passed. The daemon answers a repeated id from its store, so a retry never computes twice.
public final class DaemonClient: @unchecked Sendable {
    public let socketPath: String
    public let clientName: String
    /// Seconds one request may take before the connection is dropped (and the request retried).
    public var requestTimeout: Double = 600
    /// Seconds of retrying before giving up.
    public var retryBudget: Double = 120
    public var connectTimeout: Double = 5

    private let lock = NSLock()
    private var connection: DaemonConnection?
    private let group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    public init(socketPath: String, clientName: String) throws {
        if let problem = WireProtocol.nameProblem(clientName) {
            throw DaemonClientError.invalidArgument("client name '\(clientName)' \(problem)")
        }
        self.socketPath = socketPath
        self.clientName = clientName
    }

    deinit { connection?.close() }

    // MARK: Operations

    public func health() throws -> HealthResponse {
        try decode(try send(.GET, WireProtocol.Path.health, retrying: true))
    }

    /// Readiness; not ready is an answer here (state "loading", "stopping"), not an error.
    public func ready() throws -> ReadyResponse {
        let answer = try send(.GET, WireProtocol.Path.ready, retrying: false, acceptStatus: [200, 503])
        return try decode(answer)
    }

    public func models() throws -> ModelsResponse {
        try decode(try send(.GET, WireProtocol.Path.models, retrying: true))
    }

    /// The Prometheus exposition text.
    public func metrics() throws -> String {
        String(decoding: try send(.GET, WireProtocol.Path.metrics, retrying: true).body, as: UTF8.self)
    }

    /// Scores items under PT and SFT. `id` makes retries idempotent (a fresh one by default).
    public func score(_ items: [ScoreItem], id: String = DaemonClient.newRequestID(), deadlineMs: Int? = nil) throws -> ScoreResponse {
        let request = ScoreRequest(id: id, client: clientName, deadlineMs: deadlineMs, items: items)
        let body = try WireProtocol.encode(request)
        return try decode(try send(.POST, WireProtocol.Path.score, body: body, retrying: true))
    }

    /// Text to token ids with the daemon's tokenizer (`TokenizeRequest`: text, or chat messages).
    public func tokenize(_ request: TokenizeRequest) throws -> TokenizeResponse {
        try decode(try send(.POST, WireProtocol.Path.tokenize, body: try WireProtocol.encode(request), retrying: true))
    }

    public func detokenize(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> String {
        let request = DetokenizeRequest(ids: ids, skipSpecialTokens: skipSpecialTokens)
        let answer: DetokenizeResponse = try decode(try send(.POST, WireProtocol.Path.detokenize, body: try WireProtocol.encode(request),
                                                             retrying: true))
        return answer.text
    }

    public static func newRequestID() -> String { UUID().uuidString.lowercased() }

    // MARK: Transport

    private func send(_ method: HTTPMethod, _ path: String, body: Data? = nil, retrying: Bool,
                      acceptStatus: Set<Int> = [200]) throws -> DaemonConnection.Answer {
        try lock.withLock {
            let start = DispatchTime.now()
            var attempt = 0
            var lastError: DaemonClientError
            while true {
                attempt += 1
                let wait: Double
                do {
                    let answer = try exchange(method, path, body: body)
                    if acceptStatus.contains(answer.status) { return answer }
                    let error = serverError(answer)
                    guard retrying, case let .server(detail, _) = error, detail.code.isRetryable else { throw error }
                    wait = detail.retryAfterS ?? Self.backoff(attempt)
                    lastError = error
                    if error.closesConnection { dropConnection() }
                } catch let error as DaemonClientError {
                    guard retrying, case .connection = error else { throw error }
                    dropConnection()
                    wait = Self.backoff(attempt)
                    lastError = error
                }
                let spent = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                guard spent + wait <= retryBudget else {
                    throw DaemonClientError.gaveUp(attempts: attempt, seconds: spent, path: path, last: "\(lastError)")
                }
                Thread.sleep(forTimeInterval: wait)
            }
        }
    }

    private func exchange(_ method: HTTPMethod, _ path: String, body: Data?) throws -> DaemonConnection.Answer {
        if connection?.isOpen != true {
            connection = try DaemonConnection(socketPath: socketPath, group: group, connectTimeout: connectTimeout)
        }
        return try connection!.exchange(method: method, path: path, headers: [(WireProtocol.clientHeader, clientName)], body: body,
                                        timeout: requestTimeout)
    }

    private func dropConnection() {
        connection?.close()
        connection = nil
    }

    /// 50 ms doubling up to 5 s.
    static func backoff(_ attempt: Int) -> Double {
        min(5, 0.05 * pow(2, Double(min(attempt - 1, 10))))
    }

    private func serverError(_ answer: DaemonConnection.Answer) -> DaemonClientError {
        guard let error = try? JSONDecoder().decode(ErrorResponse.self, from: answer.body) else {
            return .unexpectedAnswer(status: answer.status, body: String(decoding: answer.body.prefix(200), as: UTF8.self))
        }
        return .server(error.error, status: answer.status)
    }

    private func decode<T: Decodable>(_ answer: DaemonConnection.Answer) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: answer.body)
        } catch {
            throw DaemonClientError.unexpectedAnswer(status: answer.status,
                                                     body: "not a \(T.self): \(String(decoding: answer.body.prefix(200), as: UTF8.self))")
        }
    }
}

public enum DaemonClientError: Error, CustomStringConvertible {
    /// Could not connect, or the connection failed before the answer was complete.
    case connection(String)
    /// The daemon answered with an API error.
    case server(ErrorDetail, status: Int)
    /// The answer was not what the API defines.
    case unexpectedAnswer(status: Int, body: String)
    /// Retrying did not succeed within the budget.
    case gaveUp(attempts: Int, seconds: Double, path: String, last: String)
    /// The daemon serves other models than the ones this run started with.
    case modelsChanged(expected: String, found: String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .connection(text): return "srppod connection: \(text)"
        case let .server(detail, status): return "srppod answered \(status) \(detail.code.rawValue): \(detail.message)"
        case let .unexpectedAnswer(status, body): return "srppod answered \(status) with an unexpected body: \(body)"
        case let .gaveUp(attempts, seconds, path, last):
            return "srppod: \(path) failed \(attempts) times over \(String(format: "%.1f", seconds)) s (last: \(last)); giving up"
        case let .modelsChanged(expected, found): return "srppod now serves \(found), but this run uses \(expected)"
        case let .invalidArgument(text): return text
        }
    }

    /// The daemon closes the connection after these (it is stopping).
    var closesConnection: Bool {
        if case let .server(detail, _) = self { return detail.code == .shuttingDown }
        return false
    }
}
