import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
import SystemSupport
#endif

/// Serves a set of weight images on an already listening Unix stream socket (bound by
/// `UnixSocket.listen` or handed over by systemd): `list` describes them, `attach` answers with the
/// manifest and the sealed memfd (SCM_RIGHTS). One thread accepts; each connection gets its own
/// thread, up to `maxConnections`, and is closed after `idleTimeout` seconds without a request.
///
/// The server neither binds nor closes the listening socket: its owner does.
public final class WeightImageServer: @unchecked Sendable {
    /// Decides whether a peer may `list` (name nil) or `attach` an image; nil allows everyone who can
    /// connect (the socket file's permissions are then the only gate).
    public typealias Authorization = @Sendable (PeerCredentials, _ name: String?) -> Bool

    public let maxConnections: Int
    public let idleTimeout: Double
    private let listeningSocket: Int32
    private let authorize: Authorization?
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var images: [String: Offered] = [:]
    private var connections = 0
    private var stopping = false
    /// A pipe whose read end wakes the accept loop's poll when `stop()` writes to it.
    private let wakeRead: Int32, wakeWrite: Int32

    public init(listeningSocket: Int32, images: [WeightImage], authorize: Authorization? = nil,
                maxConnections: Int = 64, idleTimeout: Double = 30, log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.listeningSocket = listeningSocket
        self.authorize = authorize
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.log = log
        var pipeFDs: [Int32] = [-1, -1]
        try SystemCall.retrying("pipe2") { srppo_pipe_cloexec(&pipeFDs) }
        (wakeRead, wakeWrite) = (pipeFDs[0], pipeFDs[1])
        for image in images { self.images[image.name] = Offered(image) }
    }

    /// An image and its attach reply, encoded once: the manifest JSON is most of an attach's work.
    private struct Offered {
        let image: WeightImage
        let attachReply: Data

        init(_ image: WeightImage) {
            self.image = image
            attachReply = WeightImageProtocol.encode(WeightImageProtocol.Reply(
                version: WeightImageProtocol.version, ok: true, manifest: image.manifest, backing: image.backing))
        }
    }

    deinit {
        SystemCall.close(wakeRead)
        SystemCall.close(wakeWrite)
    }

    /// Adds an image, or replaces the one of the same name. Clients that attached the old one keep
    /// their mapping; new requests get the new one.
    public func publish(_ image: WeightImage) {
        let offered = Offered(image)
        lock.withLock { images[image.name] = offered }
    }

    /// Stops offering an image (mappings already handed out stay valid).
    public func withdraw(name: String) {
        _ = lock.withLock { images.removeValue(forKey: name) }
    }

    public var imageNames: [String] { lock.withLock { images.keys.sorted() } }

    /// Accepts connections until `stop()`; each is served on its own thread.
    public func run() throws {
        while !lock.withLock({ stopping }) {
            var events = [pollfd(fd: listeningSocket, events: Int16(POLLIN), revents: 0),
                          pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            try SystemCall.retrying("poll") { poll(&events, 2, -1) }
            if events[1].revents != 0 { break }
            guard events[0].revents != 0 else { continue }
            let connection: Int32
            do {
                connection = try SystemCall.retrying("accept4") { srppo_accept_cloexec(listeningSocket) }
            } catch let error as SystemCallError where [EAGAIN, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errno) {
                // Transient: this one connection is lost, the server goes on.
                log("accept: \(error)")
                continue
            }
            let admitted = lock.withLock { () -> Bool in
                guard connections < maxConnections else { return false }
                connections += 1
                return true
            }
            guard admitted else {
                reply(connection, error: .busy, "the server already has \(maxConnections) connections; try again")
                SystemCall.close(connection)
                continue
            }
            let thread = Thread { [self] in
                serve(connection)
                SystemCall.close(connection)
                lock.withLock { connections -= 1 }
            }
            thread.name = "weight-image-connection"
            thread.start()
        }
    }

    /// Runs `run()` on a background thread.
    public func start() {
        let thread = Thread { [self] in
            do { try run() } catch { log("weight image server stopped: \(error)") }
        }
        thread.name = "weight-image-server"
        thread.start()
    }

    /// Makes `run()` return. Connections being served finish their current request.
    public func stop() {
        lock.withLock { stopping = true }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // MARK: One connection

    private func serve(_ connection: Int32) {
        let peer: PeerCredentials
        do {
            peer = try UnixSocket.peerCredentials(connection)
            try UnixSocket.setTimeouts(connection, seconds: idleTimeout)
        } catch {
            log("connection setup: \(error)")
            return
        }
        while true {
            let message: (body: Data, fds: [Int32])?
            do {
                message = try Framing.receive(connection, limit: WeightImageProtocol.maxRequestBytes, timeout: idleTimeout)
            } catch WeightImageProtocolError.messageTooLarge(let size, let limit) {
                reply(connection, error: .tooLarge, "request of \(size) bytes exceeds the limit of \(limit)")
                return
            } catch {
                log("\(peer): \(error)")
                return
            }
            guard let message else { return }
            if !message.fds.isEmpty {
                message.fds.forEach(SystemCall.close)
                reply(connection, error: .badRequest, "requests must not carry file descriptors")
                continue
            }
            guard let request = try? JSONDecoder().decode(WeightImageProtocol.Request.self, from: message.body) else {
                reply(connection, error: .badRequest, "not a JSON object with \"version\" (integer) and \"op\" (string)")
                continue
            }
            if !answer(request, on: connection, peer: peer) { return }
        }
    }

    /// Answers one request; false when the connection is no longer usable.
    private func answer(_ request: WeightImageProtocol.Request, on connection: Int32, peer: PeerCredentials) -> Bool {
        guard request.version == WeightImageProtocol.version else {
            return reply(connection, error: .unsupportedVersion,
                         "protocol version \(request.version) is not supported; this server speaks version \(WeightImageProtocol.version)")
        }
        switch request.op {
        case "list":
            guard authorize?(peer, nil) ?? true else { return reply(connection, error: .permissionDenied, "\(peer) may not list images") }
            let summaries = lock.withLock { images.values.map(\.image) }.sorted { $0.name < $1.name }.map {
                ImageSummary(name: $0.name, sha256: $0.manifest.sha256, dtype: $0.manifest.dtype,
                             dataBytes: $0.manifest.dataBytes, backing: $0.backing)
            }
            return send(connection, WeightImageProtocol.Reply(version: WeightImageProtocol.version, ok: true, images: summaries))
        case "attach":
            guard let name = request.name else { return reply(connection, error: .badRequest, "attach needs \"name\"") }
            guard authorize?(peer, name) ?? true else {
                log("refused attach '\(name)' to \(peer)")
                return reply(connection, error: .permissionDenied, "\(peer) may not attach '\(name)'")
            }
            guard let offered = lock.withLock({ images[name] }) else {
                return reply(connection, error: .unknownImage, "no image named '\(name)' (serving: \(imageNames.joined(separator: ", ")))")
            }
            let image = offered.image
            if let wanted = request.sha256, wanted != image.manifest.sha256 {
                return reply(connection, error: .hashMismatch, "image '\(name)' is sha256:\(image.manifest.sha256), not sha256:\(wanted)")
            }
            log("attach '\(name)' to \(peer)")
            return send(connection, offered.attachReply, passing: image.fd)
        default:
            return reply(connection, error: .unknownOp, "unknown op '\(request.op)' (known: list, attach)")
        }
    }

    @discardableResult
    private func reply(_ connection: Int32, error code: WeightImageProtocol.ErrorCode, _ message: String) -> Bool {
        send(connection, WeightImageProtocol.Reply(version: WeightImageProtocol.version, ok: false,
                                                   error: .init(code: code, message: message)))
    }

    private func send(_ connection: Int32, _ reply: WeightImageProtocol.Reply) -> Bool {
        send(connection, WeightImageProtocol.encode(reply))
    }

    private func send(_ connection: Int32, _ body: Data, passing fd: Int32? = nil) -> Bool {
        do {
            try Framing.send(connection, body, passing: fd)
            return true
        } catch {
            log("reply: \(error)")
            return false
        }
    }
}
