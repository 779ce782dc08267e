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
    /// The body limit of the request being read (larger for `/get_reward`'s whole rollout batches).
    private var bodyLimit = 0
    /// An answer was sent before the request was read completely: ignore the rest, then close.
    private var discarding = false
    /// The last answer said "Connection: close": errors from what follows are not answered again.
    private var closing = false
    private var pending: (computation: RequestLedger.Computation, waiter: Int, started: DispatchTime, format: AnswerFormat)?
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
            let limits = service.configuration.limits
            bodyLimit = endpoint(requestHead.uri) == WireProtocol.Path.getReward ? limits.maxRewardBodyBytes : limits.maxBodyBytes
            if let length = requestHead.headers.first(name: "content-length").flatMap(Int.init), length > bodyLimit {
                tooLarge(length)
            }
        case var .body(chunk):
            guard !discarding else { return }
            guard body.readableBytes + chunk.readableBytes <= bodyLimit else {
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
        respond(ErrorResponse(.bodyTooLarge, "request body of \(bytes)+ bytes exceeds the limit of \(bodyLimit)"),
                endpoint: endpoint(head?.uri ?? ""), close: true)
    }

    // MARK: Routing

    private func endpoint(_ uri: String) -> String {
        let path = String(uri.split(separator: "?", maxSplits: 1).first ?? "")
        return Self.postPaths.contains(path) || Self.getPaths.contains(path) ? path : "other"
    }

    private static let postPaths: Set<String> = [WireProtocol.Path.score, WireProtocol.Path.tokenize, WireProtocol.Path.detokenize,
                                                 WireProtocol.Path.getReward]
    private static let getPaths: Set<String> = [WireProtocol.Path.models, WireProtocol.Path.health, WireProtocol.Path.ready,
                                                WireProtocol.Path.metrics]

    private func route(_ head: HTTPRequestHead) {
        let path = endpoint(head.uri)
        let expected: HTTPMethod = Self.postPaths.contains(path) ? .POST : .GET
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
            var buffer = ByteBufferAllocator().buffer(capacity: 4096)
            buffer.writeString(service.metricsText())
            write(status: .ok, contentType: "text/plain; version=0.0.4", body: buffer, endpoint: path)
        case WireProtocol.Path.models:
            guard let pair = service.pair else { return respond(notReady(), endpoint: path) }
            respond(json: ModelsResponse(models: [pair.pt.description, pair.sft.description], limits: service.limits(for: pair),
                                         tokenizer: pair.text?.description, imageSocket: service.imageSocketPath),
                    endpoint: path)
        case WireProtocol.Path.tokenize, WireProtocol.Path.detokenize:
            text(path)
        case WireProtocol.Path.getReward:
            score(head, format: .openRLHF(promptCut: []))
        default:
            score(head, format: .score)
        }
    }

    /// Runs `work` off the event loop (tokenizing a large body must not hold up other connections),
    /// then `then` with its result back on this connection's loop, if the connection is still there.
    private func offload<T>(_ work: @escaping @Sendable () throws -> T, then: @escaping (HTTPHandler, Result<T, ErrorResponse>) -> Void) {
        guard let eventLoop = context?.eventLoop else { return }
        let loop = NIOLoopBound(self, eventLoop: eventLoop)
        let then = NIOLoopBound(then, eventLoop: eventLoop)
        DispatchQueue.global().async {
            let result: Result<T, ErrorResponse>
            do {
                result = .success(try work())
            } catch let error as ErrorResponse {
                result = .failure(error)
            } catch {
                result = .failure(ErrorResponse(.internal, "\(error)"))
            }
            eventLoop.execute {
                guard loop.value.context != nil else { return }
                then.value(loop.value, result)
            }
        }
    }

    // MARK: Tokenizer

    private func text(_ path: String) {
        guard let pair = service.pair, service.state != .stopping else { return respond(notReady(), endpoint: path) }
        guard let codec = pair.text else {
            return respond(ErrorResponse(.textUnsupported, "this daemon has no tokenizer for its models"), endpoint: path)
        }
        let body = Data(body.readableBytesView)
        let maxDepth = service.configuration.limits.maxJSONDepth
        if path == WireProtocol.Path.tokenize {
            offload({ try codec.tokenize(RequestValidator.decode(body, maxDepth: maxDepth)) }) { handler, result in
                switch result {
                case let .success(answer): handler.respond(json: answer, endpoint: path)
                case let .failure(error): handler.respond(error, endpoint: path)
                }
            }
        } else {
            offload({ try codec.detokenize(RequestValidator.decode(body, maxDepth: maxDepth)) }) { handler, result in
                switch result {
                case let .success(answer): handler.respond(json: answer, endpoint: path)
                case let .failure(error): handler.respond(error, endpoint: path)
                }
            }
        }
    }

    private func notReady() -> ErrorResponse {
        service.state == .stopping
            ? ErrorResponse(.shuttingDown, "the daemon is stopping")
            : ErrorResponse(.notReady, "the models are still loading", retryAfterS: 1)
    }

    // MARK: Scoring

    /// What a scoring answer looks like: srppod's own, or OpenRLHF's remote reward model's (which also
    /// says, per query, whether its prompt had lost its beginning).
    enum AnswerFormat {
        case score, openRLHF(promptCut: [Bool])

        var path: String {
            switch self {
            case .score: WireProtocol.Path.score
            case .openRLHF: WireProtocol.Path.getReward
            }
        }

        /// Whether a full queue makes the request wait rather than answer `busy`: OpenRLHF retries a
        /// refused request only five times, 1 s apart, and then gives up on the whole batch.
        var waitsForRoom: Bool {
            if case .openRLHF = self { true } else { false }
        }
    }

    private func score(_ head: HTTPRequestHead, format: AnswerFormat) {
        let path = format.path
        guard let pair = service.pair, service.state != .stopping else { return respond(notReady(), endpoint: path) }
        let started = DispatchTime.now()
        let validator = RequestValidator(limits: service.limits(for: pair), vocabSize: pair.vocabSize, eosTokenIDs: pair.eosTokenIDs,
                                         text: pair.text)
        let body = Data(body.readableBytesView)
        offload({
            switch format {
            case .score: try validator.validateScore(body)
            case .openRLHF: try validator.validateRemoteReward(body)
            }
        }) { handler, result in
            switch (result, format) {
            case let (.success(request), .score):
                handler.admit(request, head: head, pair: pair, format: format, started: started)
            case let (.success(request), .openRLHF):
                handler.admit(request, head: head, pair: pair, format: .openRLHF(promptCut: request.promptCut), started: started)
            case let (.failure(error), _): handler.respond(error, endpoint: path)
            }
        }
    }

    private func admit(_ request: ValidatedScore, head: HTTPRequestHead, pair: ModelPair, format: AnswerFormat, started: DispatchTime) {
        let path = format.path
        let client: String
        switch clientName(request, head) {
        case let .success(name): client = name
        case let .failure(error): return respond(error, endpoint: path)
        }
        if let peer, service.metrics.firstSighting(of: "\(client) \(peer)") {
            service.log.info("new client", ["client": client, "pid": "\(peer.pid)", "uid": "\(peer.uid)", "gid": "\(peer.gid)"])
        }

        guard let eventLoop = context?.eventLoop else { return }
        let loop = NIOLoopBound(self, eventLoop: eventLoop)
        let delivery: RequestLedger.Delivery = { result in
            eventLoop.execute { loop.value.deliver(result) }
        }
        let key = request.id.map { RequestLedger.key(client: client, id: $0) }
        let (admission, waiter) = service.ledger.admit(key: key, items: request.items, delivery: delivery)
        switch admission {
        case let .replay(response):
            service.metrics.replayed()
            respond(json: response, endpoint: path)  // only score requests carry ids
        case .conflict:
            respond(ErrorResponse(.idConflict, "request id '\(request.id ?? "")' was already used by client '\(client)' for different items",
                                  field: "id"), endpoint: path)
        case let .joined(computation):
            service.metrics.replayed()
            pending = (computation, waiter, started, format)
        case let .compute(computation):
            pending = (computation, waiter, started, format)
            submit(request, client: client, pair: pair, computation: computation, waitsForRoom: format.waitsForRoom, on: eventLoop)
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

    /// Streams the request through the scheduler (`ChunkedScore`: one piece for a request within the
    /// per-request limits) under its deadline; the answer goes to the ledger.
    private func submit(_ request: ValidatedScore, client: String, pair: ModelPair, computation: RequestLedger.Computation,
                        waitsForRoom: Bool, on eventLoop: EventLoop) {
        let service = self.service
        let deadlineMs = request.deadlineMs ?? service.configuration.limits.defaultDeadlineMs
        let deadline = DispatchTime.now() + .milliseconds(deadlineMs)
        let timer = NIOLockedValueBox<Scheduled<Void>?>(nil)
        let encoded = request.encoded
        let job = ChunkedScore(scheduler: service.scheduler, client: client, id: request.id, pair: pair, items: request.items,
                               truncated: request.truncated, limits: service.limits(for: pair), deadline: deadline,
                               waitsForRoom: waitsForRoom) { result in
            // Cancelled and dropped: the timer's task holds the job, whose completion holds the timer.
            timer.withLockedValue { $0?.cancel(); $0 = nil }
            service.ledger.finish(computation, result.map { response in
                var response = response
                for (index, ids) in encoded.enumerated() {
                    guard let ids else { continue }
                    response.results[index].promptIDs = ids.prompt.map(Int.init)
                    response.results[index].responseIDs = ids.response.map(Int.init)
                }
                return response
            })
        }
        service.ledger.setCancel(computation) {
            job.cancel(with: ErrorResponse(.internal, "cancelled: every requester disconnected"))
        }
        if job.pieceCount > 1 {
            service.log.debug("streaming a large request in pieces", ["client": client, "items": "\(request.items.count)",
                                                                      "pieces": "\(job.pieceCount)"])
        }
        // The timer first: a request answered at once (no items, or refused) cancels it on completion.
        let scheduled = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(deadline.uptimeNanoseconds)) {
            job.cancel(with: ErrorResponse(.deadlineExceeded, "not finished within the deadline of \(deadlineMs) ms"))
        }
        timer.withLockedValue { $0 = scheduled }
        job.start()
    }

    /// The answer to the pending score request arrived (on this event loop).
    private func deliver(_ result: Result<ScoreResponse, ErrorResponse>) {
        guard let pending else { return }
        self.pending = nil
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - pending.started.uptimeNanoseconds) / 1e9
        service.metrics.scoreLatency(seconds: seconds)
        let path = pending.format.path
        switch (result, pending.format) {
        case let (.success(response), .score): respond(json: response, endpoint: path)
        case let (.success(response), .openRLHF(promptCut)):
            respond(encoded: { try remoteReward(response, promptCut: promptCut).jsonData() }, endpoint: path)
        case let (.failure(error), _): respond(error, endpoint: path)
        }
    }

    /// OpenRLHF's answer: rewards with the truncation treatment, raw scores, and per-query logs (the
    /// same keys for every answer, an empty one too: OpenRLHF v0.9 joins the logs of several answers
    /// key by key, taking the keys from the first).
    private func remoteReward(_ response: ScoreResponse, promptCut: [Bool]) -> RemoteRewardResponse {
        let penalty = service.configuration.truncationPenalty
        let results = response.results
        return RemoteRewardResponse(rewards: results.map { $0.truncated ? -penalty : $0.reward }, scores: results.map(\.reward),
                                    extraLogs: ["coherent_reward": results.map(\.reward), "truncated": results.map { $0.truncated ? 1 : 0 },
                                                "response_tokens": results.map { Double($0.n) },
                                                "prompt_truncated": promptCut.map { $0 ? 1 : 0 }])
    }

    // MARK: Writing

    private func respond<T: Encodable>(json value: T, status: HTTPResponseStatus = .ok, endpoint: String) {
        respond(encoded: { try WireProtocol.encode(value) }, status: status, endpoint: endpoint)
    }

    private func respond(encoded: () throws -> Data, status: HTTPResponseStatus = .ok, endpoint: String) {
        do {
            let data = try encoded()
            var buffer = ByteBufferAllocator().buffer(capacity: data.count)
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
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
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
