import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import WeightImage
import WireProtocol

/// One HTTP connection's requests (after NIO's HTTP/1.1 decoder and pipelining handler): enforces the
/// body limit while reading, routes, and answers in JSON. A score request goes through the request
/// ledger (idempotent ids) to the scheduler; its answer comes back on this connection's event loop.
/// If the connection closes first, the request stops waiting, and its work is cancelled when nobody
/// else waits for it.
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: ScoringService
    /// SO_PEERCRED of a Unix socket peer; nil on TCP.
    private let peer: PeerCredentials?
    private let allowed: Bool
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// An answer was sent before the request was read completely: ignore the rest, then close.
    private var discarding = false
    /// The last answer said "Connection: close": errors from what follows are not answered again.
    private var closing = false
    private var pending: (computation: RequestLedger.Computation, waiter: Int, started: DispatchTime)?
    private var context: ChannelHandlerContext?

    init(service: ScoringService, peer: PeerCredentials?) {
        self.service = service
        self.peer = peer
        allowed = service.isAllowed(peer)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let pending {
            service.ledger.leave(pending.computation, waiter: pending.waiter)
            self.pending = nil
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(requestHead):
            head = requestHead
            body.clear()
            discarding = false
            let limit = service.configuration.limits.maxBodyBytes
            if let length = requestHead.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                tooLarge(length)
            }
        case var .body(chunk):
            guard !discarding else { return }
            guard body.readableBytes + chunk.readableBytes <= service.configuration.limits.maxBodyBytes else {
                tooLarge(body.readableBytes + chunk.readableBytes)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            context.triggerUserOutboundEvent(ExchangeEvent.requestReceived, promise: nil)
            guard !discarding, let head else { return }
            route(head)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Closing, or closed (a request cut off by the peer or by the read timeout): nobody to answer.
        guard !closing, context.channel.isActive else { return }
        // With an answer pending, a 400 now would overtake it: just close.
        if error is HTTPParserError, pending == nil {
            respond(ErrorResponse(.badHTTP, "malformed HTTP/1.1 request: \(error)"), endpoint: "other", close: true)
        } else {
            service.log.debug("connection error: \(error)")
            context.close(promise: nil)
        }
    }

    private func tooLarge(_ bytes: Int) {
        discarding = true
        respond(ErrorResponse(.bodyTooLarge, "request body of \(bytes)+ bytes exceeds the limit of \(service.configuration.limits.maxBodyBytes)"),
                endpoint: endpoint(head?.uri ?? ""), close: true)
    }

    // MARK: Routing

    private func endpoint(_ uri: String) -> String {
        let path = String(uri.split(separator: "?", maxSplits: 1).first ?? "")
        return [WireProtocol.Path.score, WireProtocol.Path.models, WireProtocol.Path.health, WireProtocol.Path.ready,
                WireProtocol.Path.metrics].contains(path) ? path : "other"
    }

    private func route(_ head: HTTPRequestHead) {
        let path = endpoint(head.uri)
        let expected: HTTPMethod = path == WireProtocol.Path.score ? .POST : .GET
        guard path != "other" else {
            return respond(ErrorResponse(.notFound, "no endpoint \(head.uri); see docs/daemon-api.md"), endpoint: path)
        }
        guard head.method == expected else {
            return respond(ErrorResponse(.methodNotAllowed, "\(path) takes \(expected.rawValue), not \(head.method.rawValue)"),
                           endpoint: path, headers: [("Allow", expected.rawValue)])
        }
        // Liveness and readiness stay open to every peer that can connect (probes); the rest needs the allow-list.
        guard allowed || path == WireProtocol.Path.health || path == WireProtocol.Path.ready else {
            service.log.warning("refused a peer not on the allow-list", ["peer": peer.map { "\($0)" } ?? "tcp", "path": path])
            return respond(ErrorResponse(.permissionDenied, "\(peer.map { "\($0)" } ?? "a TCP peer") is not on this daemon's allow-list"),
                           endpoint: path)
        }
        switch path {
        case WireProtocol.Path.health:
            respond(json: HealthResponse(pid: Int(getpid()), uptimeS: service.uptime), endpoint: path)
        case WireProtocol.Path.ready:
            let readiness = service.readiness()
            respond(json: readiness, status: readiness.ready ? .ok : .serviceUnavailable, endpoint: path)
        case WireProtocol.Path.metrics:
            var buffer = context!.channel.allocator.buffer(capacity: 4096)
            buffer.writeString(service.metricsText())
            write(status: .ok, contentType: "text/plain; version=0.0.4", body: buffer, endpoint: path)
        case WireProtocol.Path.models:
            guard let pair = service.pair else { return respond(notReady(), endpoint: path) }
            respond(json: ModelsResponse(models: [pair.pt.description, pair.sft.description], limits: service.limits(for: pair)),
                    endpoint: path)
        default:
            score(head)
        }
    }

    private func notReady() -> ErrorResponse {
        service.state == .stopping
            ? ErrorResponse(.shuttingDown, "the daemon is stopping")
            : ErrorResponse(.notReady, "the models are still loading", retryAfterS: 1)
    }

    // MARK: Scoring

    private func score(_ head: HTTPRequestHead) {
        let path = WireProtocol.Path.score
        guard let pair = service.pair, service.state != .stopping else { return respond(notReady(), endpoint: path) }
        let started = DispatchTime.now()
        let request: ValidatedScore
        do {
            let validator = RequestValidator(limits: service.limits(for: pair), vocabSize: pair.vocabSize, eosTokenIDs: pair.eosTokenIDs)
            request = try validator.validateScore(Data(body.readableBytesView))
        } catch let error as ErrorResponse {
            return respond(error, endpoint: path)
        } catch {
            return respond(ErrorResponse(.internal, "\(error)"), endpoint: path)
        }
        let client: String
        switch clientName(request, head) {
        case let .success(name): client = name
        case let .failure(error): return respond(error, endpoint: path)
        }
        if let peer, service.metrics.firstSighting(of: "\(client) \(peer)") {
            service.log.info("new client", ["client": client, "pid": "\(peer.pid)", "uid": "\(peer.uid)", "gid": "\(peer.gid)"])
        }

        let loop = NIOLoopBound(self, eventLoop: context!.eventLoop)
        let eventLoop = context!.eventLoop
        let delivery: RequestLedger.Delivery = { result in
            eventLoop.execute { loop.value.deliver(result) }
        }
        let key = request.id.map { RequestLedger.key(client: client, id: $0) }
        let (admission, waiter) = service.ledger.admit(key: key, items: request.items, delivery: delivery)
        switch admission {
        case let .replay(response):
            service.metrics.replayed()
            respond(json: response, endpoint: path)
        case .conflict:
            respond(ErrorResponse(.idConflict, "request id '\(request.id ?? "")' was already used by client '\(client)' for different items",
                                  field: "id"), endpoint: path)
        case let .joined(computation):
            service.metrics.replayed()
            pending = (computation, waiter, started)
        case let .compute(computation):
            pending = (computation, waiter, started)
            submit(request, client: client, pair: pair, computation: computation, on: eventLoop)
        }
    }

    /// The request's client name, else the header's, else one made from the peer.
    private func clientName(_ request: ValidatedScore, _ head: HTTPRequestHead) -> Result<String, ErrorResponse> {
        if let name = request.client { return .success(name) }
        if let header = head.headers.first(name: WireProtocol.clientHeader) {
            if let problem = WireProtocol.nameProblem(header) {
                return .failure(ErrorResponse(.badRequest, "header \(WireProtocol.clientHeader) \(problem)"))
            }
            return .success(header)
        }
        return .success(peer.map { "pid:\($0.pid)" } ?? "tcp")
    }

    private func submit(_ request: ValidatedScore, client: String, pair: ModelPair, computation: RequestLedger.Computation,
                        on eventLoop: EventLoop) {
        let service = self.service
        let deadlineMs = request.deadlineMs ?? service.configuration.limits.defaultDeadlineMs
        let deadline = DispatchTime.now() + .milliseconds(deadlineMs)
        let timer = NIOLockedValueBox<Scheduled<Void>?>(nil)
        let job = ScoreJob(client: client, id: request.id, pair: pair, items: request.items, truncated: request.truncated,
                           deadline: deadline) { result in
            timer.withLockedValue { $0?.cancel() }
            service.ledger.finish(computation, result)
        }
        service.ledger.setCancel(computation) {
            service.scheduler.cancel(job, with: ErrorResponse(.internal, "cancelled: every requester disconnected"))
        }
        do {
            try service.scheduler.submit(job)
        } catch let error as ErrorResponse {
            return service.ledger.finish(computation, .failure(error))
        } catch {
            return service.ledger.finish(computation, .failure(ErrorResponse(.internal, "\(error)")))
        }
        let scheduled = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline.uptimeNanoseconds)) {
            service.scheduler.cancel(job, with: ErrorResponse(.deadlineExceeded, "not finished within the deadline of \(deadlineMs) ms"))
        }
        timer.withLockedValue { $0 = scheduled }
    }

    /// The answer to the pending score request arrived (on this event loop).
    private func deliver(_ result: Result<ScoreResponse, ErrorResponse>) {
        guard let pending else { return }
        self.pending = nil
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - pending.started.uptimeNanoseconds) / 1e9
        service.metrics.scoreLatency(seconds: seconds)
        switch result {
        case let .success(response): respond(json: response, endpoint: WireProtocol.Path.score)
        case let .failure(error): respond(error, endpoint: WireProtocol.Path.score)
        }
    }

    // MARK: Writing

    private func respond<T: Encodable>(json value: T, status: HTTPResponseStatus = .ok, endpoint: String) {
        do {
            let data = try WireProtocol.encode(value)
            var buffer = context!.channel.allocator.buffer(capacity: data.count)
            buffer.writeBytes(data)
            write(status: status, contentType: "application/json", body: buffer, endpoint: endpoint)
        } catch {
            respond(ErrorResponse(.internal, "could not encode the answer: \(error)"), endpoint: endpoint)
        }
    }

    private func respond(_ error: ErrorResponse, endpoint: String, headers: [(String, String)] = [], close: Bool = false) {
        service.metrics.error(error.error.code)
        var extra = headers
        if let retry = error.error.retryAfterS { extra.append(("Retry-After", "\(Int(retry.rounded(.up)))")) }
        let data = (try? WireProtocol.encode(error)) ?? Data()
        var buffer = context!.channel.allocator.buffer(capacity: data.count)
        buffer.writeBytes(data)
        write(status: HTTPResponseStatus(statusCode: error.error.code.httpStatus), contentType: "application/json", body: buffer,
              endpoint: endpoint, headers: extra, close: close)
    }

    private func write(status: HTTPResponseStatus, contentType: String, body: ByteBuffer, endpoint: String,
                       headers extra: [(String, String)] = [], close: Bool = false) {
        guard let context else { return }
        service.metrics.request(endpoint: endpoint, status: Int(status.code))
        let keepAlive = !close && (head?.isKeepAlive ?? false)
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.readableBytes)")])
        headers.add(contentsOf: extra)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let sent = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        context.triggerUserOutboundEvent(ExchangeEvent.responseSent, promise: nil)
        if !keepAlive {
            closing = true
            sent.whenComplete { _ in context.close(promise: nil) }
        }
    }
}
