import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SystemSupport
import Tokenizer
import WeightImage
import WireProtocol
#if canImport(Glibc)
import Glibc
#endif

/// srppod: serves coherent rewards and per-token log-probs of the frozen PT and SFT models over
/// HTTP/1.1 + JSON on a Unix socket, and the models' weight images by descriptor on a second socket.
///
/// Life cycle (each step tells systemd through sd_notify when supervised):
///   1. `listen()`: adopt the sockets systemd passed (named `http`, `images`, optionally `tcp`) or bind
///      the configured paths; HTTP answers at once (`/v1/ready` says "loading").
///   2. `loadModels()`: re-map images kept in the fd store, else load the checkpoints (STATUS=,
///      EXTEND_TIMEOUT_USEC=); build the model pair; READY=1.
///   3. `reload()` on SIGHUP: a new SFT revision, swapped atomically (RELOADING=1 … READY=1).
///   4. `stop()` on SIGTERM: STOPPING=1, stop accepting, finish queued work, exit.
public final class ScoringDaemon: @unchecked Sendable {
    public let configuration: DaemonConfiguration
    public let log: DaemonLog
    package let service: ScoringService
    private var passed: PassedDescriptors
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let imageStore: ImageStore
    private var listeners: [Channel] = []
    private var boundPaths: [String] = []
    private var imageListener: Int32?
    private var imageServer: WeightImageServer?
    private var schedulerThread: Thread?
    private var watchdog: RepeatedTask?
    private let stateLock = NSCondition()
    private var stopRequested = false
    private var stopped = false

    /// Where each socket is, for the start-up report ("systemd:http" when passed by systemd).
    public private(set) var socketDescriptions: [String: String] = [:]

    public init(configuration: DaemonConfiguration, log: DaemonLog, passed: PassedDescriptors) {
        self.configuration = configuration
        self.log = log
        self.passed = passed
        service = ScoringService(configuration: configuration, log: log, metrics: Metrics())
        imageStore = ImageStore(log: log)
    }

    // MARK: 1. Sockets

    /// Adopts or binds every socket and starts answering HTTP. Nothing is scored until `loadModels()`.
    /// If a socket cannot be had (a TCP port in use), what was opened is closed again and socket
    /// files this call bound are removed, so a failed start leaves nothing behind.
    public func listen() throws {
        do {
            try openSockets()
        } catch {
            closeSockets()
            throw error
        }
        let thread = Thread { [service] in service.scheduler.run() }
        thread.name = "srppod-scheduler"
        thread.start()
        schedulerThread = thread
        startWatchdog()
    }

    private func openSockets() throws {
        let http = try passed.take("http")
        let images = try passed.take("images")
        let tcp = try passed.take("tcp")

        // The image socket first: /v1/models names its path, so trainers find it without a flag.
        imageListener = try unixSocket("images", passed: images, path: configuration.imageSocketPath)
        if let imageListener, let path = UnixSocket.boundPath(imageListener) {
            service.imageSocketPath = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        guard let httpFD = try unixSocket("http", passed: http, path: configuration.socketPath) else {
            throw DaemonError.configuration("no HTTP socket: start under systemd socket activation (a socket named 'http') or give --socket PATH")
        }
        listeners.append(try bootstrap(peerCredentials: true).withBoundSocket(httpFD).wait())

        if let tcp {
            listeners.append(try bootstrap(peerCredentials: false).withBoundSocket(tcp).wait())
            socketDescriptions["tcp"] = "systemd:tcp"
        } else if let port = configuration.tcpPort {
            // SO_REUSEADDR: the connections the daemon closed itself stay in TIME_WAIT for a minute
            // after it exits; without it a restart on the same port fails with "Address already in use".
            let tcp = bootstrap(peerCredentials: false).serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            listeners.append(try tcp.bind(host: configuration.tcpHost, port: port).wait())
            socketDescriptions["tcp"] = "\(configuration.tcpHost):\(port)"
        }
        if configuration.anyAllowList && socketDescriptions["tcp"] != nil {
            log.warning("an allow-list is set: TCP peers have no credentials and are refused everything but health and readiness")
        }

    }

    /// The Unix socket named `name`: the one systemd passed, else one bound at `path`, else none.
    private func unixSocket(_ name: String, passed: Int32?, path: String?) throws -> Int32? {
        if let passed {
            socketDescriptions[name] = "systemd:\(name)"
            return passed
        }
        guard let path else { return nil }
        let fd = try bindUnixSocket(path)
        socketDescriptions[name] = path
        return fd
    }

    /// Undoes a partial `openSockets()`.
    private func closeSockets() {
        for listener in listeners { try? listener.close().wait() }
        listeners.removeAll()
        if let imageListener { SystemCall.close(imageListener) }
        imageListener = nil
        for path in boundPaths { unlink(path) }
        boundPaths.removeAll()
    }

    private func bindUnixSocket(_ path: String) throws -> Int32 {
        let fd = try UnixSocket.listen(path: path, backlog: 256)
        boundPaths.append(path)
        guard chmod(path, mode_t(configuration.socketMode)) == 0 else {
            throw DaemonError.startup("chmod \(String(configuration.socketMode, radix: 8)) \(path): \(String(cString: strerror(errno)))")
        }
        if let group = configuration.socketGroup, chown(path, uid_t.max, group) != 0 {
            throw DaemonError.startup("chgrp \(group) \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    private func bootstrap(peerCredentials: Bool) -> ServerBootstrap {
        let service = self.service
        let configuration = self.configuration
        return ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelInitializer { channel in
                service.metrics.connectionOpened()
                channel.closeFuture.whenComplete { _ in service.metrics.connectionClosed() }
                guard service.metrics.openConnections <= configuration.maxConnections else {
                    let error = ErrorResponse(.busy, "the daemon already has \(configuration.maxConnections) connections", retryAfterS: 1)
                    service.metrics.error(.busy)
                    return channel.writeAndFlush(RawResponse.bytes(error, allocator: channel.allocator)).flatMap { channel.close() }
                }
                let credentials: EventLoopFuture<PeerCredentials?> = peerCredentials
                    ? Self.peerCredentials(channel).map { Optional($0) }
                    : channel.eventLoop.makeSucceededFuture(nil)
                return credentials.flatMap { peer in
                    channel.pipeline.addHandler(ConnectionGuard(requestTimeout: configuration.requestReadTimeout,
                                                                idleTimeout: configuration.idleTimeout) { service.metrics.error(.requestTimeout) })
                        .flatMap { channel.pipeline.configureHTTPServerPipeline(withErrorHandling: false) }
                        .flatMap { channel.pipeline.addHandler(HTTPHandler(service: service, peer: peer)) }
                }
            }
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
    }

    /// struct ucred, as SO_PEERCRED fills it.
    private struct UCred: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    private static func peerCredentials(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(DaemonError.startup("channel without socket options"))
        }
        let future: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }

    // MARK: 2. Models

    /// What start-up found and did, for the "ready" report.
    public struct LoadReport: Sendable {
        public var models: [ModelDescription]
        public var seconds: Double
    }

    /// Loads (or re-maps) PT and SFT, starts the image socket, and declares the daemon ready.
    public func loadModels() throws -> LoadReport {
        let start = DispatchTime.now()
        ServiceManager.notify("STATUS=Loading models", "EXTEND_TIMEOUT_USEC=\(Self.loadStepMicroseconds)")
        let paths = ["pt": configuration.ptPath, "sft": configuration.sftPath]
        let restored = imageStore.restore(from: &passed, paths: paths, dtype: configuration.dtype)
        let leftovers = passed.closeRest()
        if !leftovers.isEmpty { log.warning("closed descriptors passed under unknown names", ["names": leftovers.joined(separator: ",")]) }

        let pt = try model("pt", path: configuration.ptPath, restored: restored, sharing: nil)
        let sft = try model("sft", path: configuration.sftPath, restored: restored, sharing: pt)
        let pair = try ModelPair(pt: pt, sft: sft, text: loadTextCodec(sft.model.config.eosTokenIds))
        service.install(pair)

        if let imageListener {
            let service = self.service
            let server = try WeightImageServer(listeningSocket: imageListener, images: [pt.image, sft.image],
                                               authorize: { peer, _ in service.isAllowed(peer) },
                                               log: { [log] in log.info("images: \($0)") })
            server.start()
            imageServer = server
        }
        imageStore.save(pair)
        service.state = .serving
        ServiceManager.notify("READY=1", "STATUS=\(statusLine(pair))")
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        log.info("ready", ["pt": pt.identity.sha256, "sft": sft.identity.sha256, "pt_from": pt.origin.rawValue,
                           "sft_from": sft.origin.rawValue, "seconds": String(format: "%.3f", seconds)])
        return LoadReport(models: [pt.description, sft.description], seconds: seconds)
    }

    /// How much longer systemd should wait each time a loading step starts (EXTEND_TIMEOUT_USEC).
    static let loadStepMicroseconds = 300_000_000

    private func model(_ role: String, path: String, restored: ImageStore.Restored, sharing other: ServedModel?) throws -> ServedModel {
        if let kept = restored.images[role] {
            return try ServedModel(role: role, image: kept.image, revision: kept.revision, source: kept.source, origin: .fdStore)
        }
        guard let stamp = SourceStamp.of(path) else { throw DaemonError.startup("\(role): cannot read \(path)") }
        if let other, other.source.sameCheckpoint(as: stamp) {
            return try ServedModel(role: role, image: other.image.renamed(role), revision: 1, source: stamp, origin: other.origin)
        }
        ServiceManager.notify("STATUS=Loading \(role.uppercased()) from \(path)", "EXTEND_TIMEOUT_USEC=\(Self.loadStepMicroseconds)")
        log.info("loading", ["role": role, "path": path])
        let image = try WeightImage.load(name: role, path: path, dtype: configuration.dtype, hugePages: configuration.hugePages)
        return try ServedModel(role: role, image: image, revision: 1, source: stamp, origin: .file)
    }

    /// The tokenizer of `--tokenizer`, else of the SFT checkpoint, else of PT's (nil: ids only).
    private func loadTextCodec(_ eos: [Int]) throws -> TextCodec? {
        if let path = configuration.tokenizerPath {
            do {
                let encoder = try PromptResponseEncoder(tokenizer: try BPETokenizer(modelPath: path), chatTemplateFile: configuration.chatTemplatePath)
                return TextCodec(encoder: encoder, source: path, modelEOS: eos)
            } catch {
                throw DaemonError.startup("--tokenizer \(path): \(error)")
            }
        }
        let paths = configuration.tokenizerPath.map { [$0] } ?? [configuration.sftPath, configuration.ptPath]
        let codec = TextCodec.load(from: paths, chatTemplateFile: configuration.chatTemplatePath, modelEOS: eos, log: log)
        if let codec {
            log.info("tokenizer", ["source": codec.source, "vocab": "\(codec.tokenizer.vocabularySize)"])
        } else {
            log.info("no tokenizer found: text requests are refused (text_unsupported)", ["paths": paths.joined(separator: ",")])
        }
        return codec
    }

    private func statusLine(_ pair: ModelPair) -> String {
        "Serving PT \(pair.pt.identity.sha256.prefix(12)), SFT \(pair.sft.identity.sha256.prefix(12)) revision \(pair.sft.identity.revision)"
    }

    // MARK: 3. Reload

    /// Loads the SFT checkpoint at the configured path again (point it at the new revision first, e.g.
    /// a symlink). Requests admitted before the swap finish on the old revision, later ones get the new;
    /// clients that attached the old image keep their mapping. A failed load keeps the old revision.
    public func reload() {
        guard service.state == .serving, let current = service.pair else {
            log.warning("reload ignored", ["state": service.state.rawValue])
            return
        }
        service.state = .reloading
        ServiceManager.notify("RELOADING=1", "MONOTONIC_USEC=\(ServiceManager.monotonicMicroseconds)",
                              "STATUS=Reloading SFT from \(configuration.sftPath)")
        do {
            let sft = try model("sft", path: configuration.sftPath, restored: ImageStore.Restored(), sharing: current.pt)
            if sft.identity.sha256 == current.sft.identity.sha256 {
                log.info("reload: SFT unchanged", ["sha256": sft.identity.sha256, "revision": "\(current.sft.identity.revision)"])
            } else {
                let next = try ServedModel(role: "sft", image: sft.image, revision: current.sft.identity.revision + 1,
                                           source: sft.source, origin: sft.origin)
                let pair = try ModelPair(pt: current.pt, sft: next, text: (try? loadTextCodec(next.model.config.eosTokenIds)) ?? current.text)
                service.install(pair)
                imageServer?.publish(next.image)
                imageStore.save(pair)
                log.info("reloaded SFT", ["sha256": next.identity.sha256, "revision": "\(next.identity.revision)"])
            }
            service.metrics.reload(succeeded: true)
        } catch {
            service.metrics.reload(succeeded: false)
            log.error("reload failed, still serving the previous SFT: \(error)")
        }
        if service.state == .reloading { service.state = .serving }
        ServiceManager.notify("READY=1", "STATUS=\(statusLine(service.pair!))")
    }

    // MARK: 4. Stop

    /// Stops accepting, lets queued work finish (up to the grace period), then ends `waitUntilStopped`.
    /// Safe to call more than once, from any thread, and after a failed start (removes its socket files).
    public func stop() {
        let first: Bool = stateLock.withLock {
            defer { stopRequested = true }
            return !stopRequested
        }
        guard first else { return }
        service.state = .stopping
        ServiceManager.notify("STOPPING=1", "STATUS=Stopping")
        log.info("stopping")
        for listener in listeners { try? listener.close().wait() }
        imageServer?.stop()
        if let imageListener, imageServer == nil { SystemCall.close(imageListener) }
        service.scheduler.stop()
        // No scheduler thread: `listen()` failed, nothing was ever queued.
        if schedulerThread != nil, !service.scheduler.waitUntilStopped(seconds: configuration.stopGracePeriod) {
            service.scheduler.abandonQueued(with: ErrorResponse(.shuttingDown, "the daemon stopped before this request was scored"))
            _ = service.scheduler.waitUntilStopped(seconds: configuration.stopGracePeriod)
        }
        watchdog?.cancel()
        // Give answers just delivered a moment to be written before the connections close.
        Thread.sleep(forTimeInterval: 0.05)
        try? group.syncShutdownGracefully()
        for path in boundPaths { unlink(path) }
        stateLock.withLock {
            stopped = true
            stateLock.broadcast()
        }
    }

    public func waitUntilStopped() {
        stateLock.withLock { while !stopped { stateLock.wait() } }
    }

    // MARK: Watchdog

    /// WATCHDOG=1 at half the interval systemd asks for, from the event loop (so a stuck loop stops the
    /// pings), and only while the scheduler is not stuck in one batch for longer than the interval.
    private func startWatchdog() {
        guard let interval = ServiceManager.watchdogInterval else { return }
        let scheduler = service.scheduler
        let log = self.log
        watchdog = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(Int64(interval * 0.5e9))) { _ in
            let busy = scheduler.runningBatchSeconds
            if busy < interval {
                ServiceManager.notify("WATCHDOG=1")
            } else {
                log.error("one batch has been running for \(Int(busy)) s, longer than the watchdog interval: no ping")
            }
        }
    }
}
