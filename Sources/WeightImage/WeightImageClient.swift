import Foundation
#if canImport(Glibc)
import Glibc
import ModelFiles
import SystemSupport
#endif

/// A connection to a weight image server. Requests are answered in order on the one connection.
public final class WeightImageClient {
    public let socketPath: String
    public let timeout: Double
    private let socket: Int32

    public init(socketPath: String, timeout: Double = 30) throws {
        self.socketPath = socketPath
        self.timeout = timeout
        socket = try UnixSocket.connect(path: socketPath)
        do {
            try UnixSocket.setTimeouts(socket, seconds: timeout)
        } catch {
            SystemCall.close(socket)
            throw error
        }
    }

    deinit { SystemCall.close(socket) }

    /// The images the server offers.
    public func list() throws -> [ImageSummary] {
        let (reply, fds, _) = try exchange(.init(version: WeightImageProtocol.version, op: "list"))
        try expectNoDescriptors(fds)
        guard let images = reply.images else { throw WeightImageProtocolError.malformedMessage(problem: "list reply without \"images\"") }
        return images
    }

    /// Asks for an image: its manifest, backing and sealed memfd. With `expectedSHA256`, an image with
    /// other content is refused (by the server, and checked again here).
    public func fetch(name: String, expectedSHA256: String? = nil) throws -> ReceivedImage {
        let (reply, fds, receivedAt) = try exchange(.init(version: WeightImageProtocol.version, op: "attach", name: name,
                                                          sha256: expectedSHA256))
        guard fds.count == 1 else {
            fds.forEach(SystemCall.close)
            throw WeightImageProtocolError.unexpectedDescriptors(problem: "an attach reply carries exactly one, got \(fds.count)")
        }
        let received = ReceivedImage(fd: fds[0], manifest: try reply.manifest.orThrow("manifest"),
                                     backing: try reply.backing.orThrow("backing"), receivedAt: receivedAt)
        guard received.manifest.name == name else {
            throw WeightImageError.manifestMismatch(image: name, field: "name", problem: "the server sent '\(received.manifest.name)'")
        }
        if let expectedSHA256, expectedSHA256 != received.manifest.sha256 {
            throw WeightImageError.hashMismatch(image: name, expected: expectedSHA256, actual: received.manifest.sha256)
        }
        return received
    }

    /// Connects, fetches `name` and maps it: the usual way for a process to get a frozen model.
    public static func attach(socketPath: String, name: String, mode: AttachMode = .shared, expectedSHA256: String? = nil,
                              verifyHash: Bool = false, populate: Bool = false) throws -> MappedWeightImage {
        let received = try WeightImageClient(socketPath: socketPath).fetch(name: name, expectedSHA256: expectedSHA256)
        return try received.map(mode: mode, verifyHash: verifyHash, populate: populate)
    }

    /// Sends a request and reads its reply; error replies become `WeightImageProtocolError.server`.
    /// Also returns when the whole reply (and any descriptor) had arrived, before decoding.
    private func exchange(_ request: WeightImageProtocol.Request) throws -> (WeightImageProtocol.Reply, [Int32], DispatchTime) {
        try Framing.send(socket, WeightImageProtocol.encode(request))
        guard let (body, fds) = try Framing.receive(socket, limit: WeightImageProtocol.maxReplyBytes, timeout: timeout) else {
            throw WeightImageProtocolError.truncatedMessage(received: 0, expected: WeightImageProtocol.lengthBytes)
        }
        let receivedAt = DispatchTime.now()
        let reply: WeightImageProtocol.Reply
        do {
            reply = try JSONDecoder().decode(WeightImageProtocol.Reply.self, from: body)
        } catch let error as DecodingError {
            fds.forEach(SystemCall.close)
            throw WeightImageProtocolError.malformedMessage(problem: DecodingProblem(error).description)
        } catch {
            fds.forEach(SystemCall.close)
            throw WeightImageProtocolError.malformedMessage(problem: "reply is not JSON")
        }
        if !reply.ok {
            fds.forEach(SystemCall.close)
            throw WeightImageProtocolError.server(code: reply.error?.code.rawValue ?? "unknown", message: reply.error?.message ?? "")
        }
        return (reply, fds, receivedAt)
    }

    private func expectNoDescriptors(_ fds: [Int32]) throws {
        guard fds.isEmpty else {
            fds.forEach(SystemCall.close)
            throw WeightImageProtocolError.unexpectedDescriptors(problem: "a list reply carries none, got \(fds.count)")
        }
    }
}

/// An image descriptor received from a server, with its manifest. Owns the descriptor (closed with
/// the object); mappings made from it outlive it.
public final class ReceivedImage: @unchecked Sendable {
    public let fd: Int32
    public let manifest: WeightImageManifest
    public let backing: ImageBacking
    /// When the reply and the descriptor had arrived, before the manifest was decoded: the start of
    /// attach-time measurements ("descriptor received → model ready").
    public let receivedAt: DispatchTime

    init(fd: Int32, manifest: WeightImageManifest, backing: ImageBacking, receivedAt: DispatchTime) {
        self.fd = fd
        self.manifest = manifest
        self.backing = backing
        self.receivedAt = receivedAt
    }

    deinit { SystemCall.close(fd) }

    /// Maps the image (see `MappedWeightImage.map`).
    public func map(mode: AttachMode = .shared, verifyHash: Bool = false, populate: Bool = false) throws -> MappedWeightImage {
        try MappedWeightImage.map(fd: fd, manifest: manifest, mode: mode, verifyHash: verifyHash, populate: populate)
    }
}

extension Optional {
    func orThrow(_ field: String) throws -> Wrapped {
        guard let self else { throw WeightImageProtocolError.malformedMessage(problem: "reply without \"\(field)\"") }
        return self
    }
}
