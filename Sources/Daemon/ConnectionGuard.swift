import Foundation
import NIOCore
import NIOHTTP1
import WireProtocol

/// Progress of one HTTP exchange, sent by `HTTPHandler` towards the socket as outbound user events so
/// that `ConnectionGuard` knows when a request is complete and when its answer has gone out.
enum ExchangeEvent {
    case requestReceived
    case responseSent
}

/// First handler of every connection, on the raw bytes: a request must arrive completely within
/// `requestTimeout` of its first byte (a slow or stalled sender gets `408 request_timeout` and the
/// connection is closed), and a connection with nothing in flight is closed after `idleTimeout`.
/// The answer is written here as plain bytes because the HTTP decoder may be in the middle of a
/// request head that will never complete.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let requestTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let onTimeout: () -> Void
    private var receiving = false
    private var inFlight = 0
    private var timer: Scheduled<Void>?

    /// `onTimeout` counts the timed-out request in the metrics.
    init(requestTimeout: Double, idleTimeout: Double, onTimeout: @escaping () -> Void) {
        self.requestTimeout = .nanoseconds(Int64(requestTimeout * 1e9))
        self.idleTimeout = .nanoseconds(Int64(idleTimeout * 1e9))
        self.onTimeout = onTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, after: idleTimeout, requestTimedOut: false)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !receiving {
            receiving = true
            arm(context, after: requestTimeout, requestTimedOut: true)
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? ExchangeEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .requestReceived:
            receiving = false
            inFlight += 1
            timer?.cancel()
            timer = nil
        case .responseSent:
            inFlight -= 1
            if inFlight == 0 && !receiving { arm(context, after: idleTimeout, requestTimedOut: false) }
        }
        promise?.succeed(())
    }

    private func arm(_ context: ChannelHandlerContext, after delay: TimeAmount, requestTimedOut: Bool) {
        timer?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            guard requestTimedOut, handler.inFlight == 0 else {
                context.close(promise: nil)
                return
            }
            handler.onTimeout()
            let error = ErrorResponse(.requestTimeout, "the request did not arrive completely within \(Double(handler.requestTimeout.nanoseconds) / 1e9) s")
            context.writeAndFlush(NIOAny(IOData.byteBuffer(RawResponse.bytes(error, allocator: context.channel.allocator)))).whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}

/// A complete HTTP/1.1 error answer as bytes, for the two places that answer outside the HTTP
/// pipeline: a stalled request (`ConnectionGuard`) and a connection over the limit.
enum RawResponse {
    static func bytes(_ error: ErrorResponse, allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = (try? WireProtocol.encode(error)) ?? Data()
        let status = error.error.code.httpStatus
        var head = "HTTP/1.1 \(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase)\r\nContent-Type: application/json\r\n"
        if let retry = error.error.retryAfterS { head += "Retry-After: \(Int(retry.rounded(.up)))\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var buffer = allocator.buffer(capacity: head.utf8.count + body.count)
        buffer.writeString(head)
        buffer.writeBytes(body)
        return buffer
    }
}
