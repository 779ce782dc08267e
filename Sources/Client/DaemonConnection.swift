import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection to srppod's Unix socket, used synchronously: `exchange` sends a
/// request and blocks until the whole answer is in (or the timeout passes). NIO's HTTP client codec
/// does the framing; this only collects the parts.
final class DaemonConnection {
    struct Answer {
        let status: Int
        let headers: HTTPHeaders
        let body: Data
    }

    private let channel: Channel
    private let collector: AnswerCollector

    init(socketPath: String, group: EventLoopGroup, connectTimeout: Double) throws {
        let collector = AnswerCollector()
        do {
            channel = try ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(Int64(connectTimeout * 1e9)))
                .channelInitializer { channel in
                    channel.pipeline.addHTTPClientHandlers().flatMap { channel.pipeline.addHandler(collector) }
                }
                .connect(unixDomainSocketPath: socketPath).wait()
        } catch {
            throw DaemonClientError.connection("cannot connect to \(socketPath): \(error)")
        }
        self.collector = collector
    }

    deinit { channel.close(promise: nil) }

    var isOpen: Bool { channel.isActive }

    func close() {
        try? channel.close().wait()
    }

    /// Sends one request and waits for its answer. A connection that closes or errs first, or does
    /// not answer within `timeout` seconds, throws `DaemonClientError.connection` and is closed.
    func exchange(method: HTTPMethod, path: String, headers: [(String, String)], body: Data?, timeout: Double) throws -> Answer {
        let channel = self.channel
        let collector = self.collector
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "srppod")
        head.headers.add(contentsOf: headers)
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.count)")
        }
        let answer: EventLoopFuture<Answer> = channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: Answer.self)
            collector.expect(promise)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
                promise.fail(DaemonClientError.connection("no answer to \(method.rawValue) \(path) within \(timeout) s"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            return promise.futureResult
        }
        do {
            return try answer.wait()
        } catch let error as DaemonClientError {
            throw error
        } catch {
            throw DaemonClientError.connection("\(method.rawValue) \(path): \(error)")
        }
    }
}

/// Collects the parts of each answer and completes the promise of the request waiting for it.
private final class AnswerCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private var waiting: EventLoopPromise<DaemonConnection.Answer>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    /// Called on the event loop before the request is written.
    func expect(_ promise: EventLoopPromise<DaemonConnection.Answer>) {
        precondition(waiting == nil, "one request at a time per connection")
        waiting = promise
        head = nil
        body.clear()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(responseHead):
            head = responseHead
        case var .body(chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head, let promise = waiting else { return }
            waiting = nil
            promise.succeed(.init(status: Int(head.status.code), headers: head.headers, body: Data(body.readableBytesView)))
            if !head.isKeepAlive { context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(DaemonClientError.connection("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(DaemonClientError.connection("the daemon closed the connection before answering"))
        context.fireChannelInactive()
    }

    private func fail(_ error: Error) {
        waiting?.fail(error)
        waiting = nil
    }
}
