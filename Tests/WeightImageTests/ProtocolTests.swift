import CLinux
import Foundation
import Transformer
import WeightImage
import TestSupport
import XCTest

/// The hand-out protocol over a real Unix socket, with the server on its own threads. Raw requests are
/// framed by hand here, following docs/weight-image-protocol.md rather than the library's own framing.
final class ProtocolTests: XCTestCase {
    var socketPath = ""
    var listening: Int32 = -1
    var server: WeightImageServer!
    var image: WeightImage!
    var model: LlamaModel!

    override func setUpWithError() throws {
        model = tinyModel()
        image = try WeightImage(name: "tiny", model: model, hugePages: .off)
        socketPath = try temporaryFolder(self) + "/weights.sock"
        listening = try UnixSocket.listen(path: socketPath)
    }

    override func tearDown() {
        server?.stop()
        close(listening)
    }

    func startServer(authorize: WeightImageServer.Authorization? = nil, maxConnections: Int = 64) throws {
        server = try WeightImageServer(listeningSocket: listening, images: [image], authorize: authorize, maxConnections: maxConnections)
        server.start()
    }

    // MARK: Raw wire access

    func rawConnect() throws -> Int32 {
        let fd = try UnixSocket.connect(path: socketPath)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        addTeardownBlock { close(fd) }
        return fd
    }

    func rawSend(_ fd: Int32, _ body: [UInt8], declaredLength: Int? = nil) {
        let length = UInt32(declaredLength ?? body.count)
        let frame = [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
        XCTAssertEqual(write(fd, frame, frame.count), frame.count)
    }

    /// One reply: the JSON object and the descriptors that came with it (nil at end of stream).
    func rawReceive(_ fd: Int32) throws -> (json: [String: Any], fds: [Int32])? {
        var collected: [Int32] = []
        func read(_ count: Int) -> [UInt8]? {
            var buffer = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                var fds = [Int32](repeating: -1, count: 4)
                var received: Int32 = 0, truncated: Int32 = 0
                let n = buffer.withUnsafeMutableBytes {
                    srppo_recv_with_fds(fd, $0.baseAddress! + done, count - done, &fds, 4, &received, &truncated)
                }
                collected += fds[0..<Int(received)]
                if n <= 0 { return nil }
                done += n
            }
            return buffer
        }
        guard let header = read(4) else { return nil }
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard let body = read(length) else { return nil }
        return (try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any], collected)
    }

    func request(_ fd: Int32, _ json: String) throws -> [String: Any] {
        rawSend(fd, Array(json.utf8))
        let reply = try XCTUnwrap(try rawReceive(fd))
        reply.fds.forEach { close($0) }
        return reply.json
    }

    func errorCode(_ reply: [String: Any]) -> String? {
        XCTAssertEqual(reply["ok"] as? Bool, false)
        return (reply["error"] as? [String: Any])?["code"] as? String
    }

    // MARK: Tests

    func testAttachOverTheSocketGivesTheSameModel() throws {
        try startServer()
        let client = try WeightImageClient(socketPath: socketPath)
        let listed = try client.list()
        XCTAssertEqual(listed.map(\.name), ["tiny"])
        XCTAssertEqual(listed.first?.sha256, image.manifest.sha256)
        XCTAssertEqual(listed.first?.dtype, .f32)
        XCTAssertEqual(listed.first?.dataBytes, image.manifest.dataBytes)
        XCTAssertEqual(listed.first?.backing, image.backing)
        let received = try client.fetch(name: "tiny", expectedSHA256: image.manifest.sha256)
        XCTAssertEqual(received.manifest, image.manifest)
        XCTAssertEqual(received.backing, image.backing)
        XCTAssertNotEqual(received.fd, image.fd, "the client holds its own descriptor of the memfd")
        var mine = stat(), theirs = stat()
        fstat(received.fd, &mine)
        fstat(image.fd, &theirs)
        XCTAssertEqual(mine.st_ino, theirs.st_ino, "same memory object")
        XCTAssertEqual(mmapErrno(received.fd, bytes: image.memoryBytes, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED), EPERM)
        let expected = try model.logProbs(tinyRequests)
        XCTAssertEqual(try received.map(mode: .shared).makeModel().logProbs(tinyRequests), expected)
        XCTAssertEqual(try WeightImageClient.attach(socketPath: socketPath, name: "tiny", mode: .private, verifyHash: true)
            .makeModel().logProbs(tinyRequests), expected)
    }

    func testRawReplyCarriesExactlyOneDescriptorAndTheManifest() throws {
        try startServer()
        let fd = try rawConnect()
        rawSend(fd, Array(#"{"version":1,"op":"attach","name":"tiny"}"#.utf8))
        let reply = try XCTUnwrap(try rawReceive(fd))
        defer { reply.fds.forEach { close($0) } }
        XCTAssertEqual(reply.fds.count, 1)
        XCTAssertEqual(reply.json["ok"] as? Bool, true)
        XCTAssertEqual(reply.json["version"] as? Int, 1)
        let manifest = try XCTUnwrap(reply.json["manifest"] as? [String: Any])
        XCTAssertEqual(manifest["sha256"] as? String, image.manifest.sha256)
        XCTAssertEqual(manifest["data_bytes"] as? Int, image.manifest.dataBytes)
        XCTAssertEqual((reply.json["backing"] as? [String: Any])?["kind"] as? String, "normal")
        // Several requests on one connection are answered in order.
        XCTAssertEqual(((try request(fd, #"{"version":1,"op":"list"}"#))["images"] as? [Any])?.count, 1)
    }

    func testErrorsAreAnsweredWithCodesAndTheConnectionStaysUsable() throws {
        try startServer()
        let fd = try rawConnect()
        XCTAssertEqual(errorCode(try request(fd, #"{"version":1,"op":"attach","name":"nope"}"#)), "unknown_image")
        XCTAssertEqual(errorCode(try request(fd, #"{"version":1,"op":"attach","name":"tiny","sha256":"00"}"#)), "hash_mismatch")
        XCTAssertEqual(errorCode(try request(fd, #"{"version":2,"op":"list"}"#)), "unsupported_version")
        XCTAssertEqual(errorCode(try request(fd, #"{"version":1,"op":"delete"}"#)), "unknown_op")
        XCTAssertEqual(errorCode(try request(fd, #"{"version":1,"op":"attach"}"#)), "bad_request")
        XCTAssertEqual(errorCode(try request(fd, "not json")), "bad_request")
        XCTAssertEqual(errorCode(try request(fd, "[1,2]")), "bad_request")
        XCTAssertEqual((try request(fd, #"{"version":1,"op":"list"}"#))["ok"] as? Bool, true)

        XCTAssertThrowsError(try WeightImageClient(socketPath: socketPath).fetch(name: "nope")) { error in
            guard case WeightImageProtocolError.server(code: "unknown_image", message: let message) = error else {
                return XCTFail("expected unknown_image, got \(error)")
            }
            XCTAssertTrue(message.contains("serving: tiny"), message)
        }
    }

    func testOversizedRequestIsRefusedAndTheConnectionClosed() throws {
        try startServer()
        let fd = try rawConnect()
        rawSend(fd, [], declaredLength: WeightImageProtocol.maxRequestBytes + 1)
        let reply = try XCTUnwrap(try rawReceive(fd))
        XCTAssertEqual(errorCode(reply.json), "too_large")
        XCTAssertNil(try rawReceive(fd), "the server closes the connection")
    }

    func testRequestsCarryingDescriptorsAreRefusedAndTheDescriptorsClosed() throws {
        try startServer()
        let fd = try rawConnect()
        var frame = [UInt8]([0, 0, 0, 25]) + Array(#"{"version":1,"op":"list"}"#.utf8)
        XCTAssertEqual(frame.count, 29)
        XCTAssertEqual(srppo_send_with_fd(fd, &frame, frame.count, image.fd), 29)
        let reply = try XCTUnwrap(try rawReceive(fd))
        XCTAssertEqual(errorCode(reply.json), "bad_request")
    }

    func testServerSeesPeerCredentialsAndCanRefuse() throws {
        let seen = SeenPeers()
        try startServer(authorize: { peer, name in
            seen.add(peer, name)
            return name != "tiny"
        })
        XCTAssertThrowsError(try WeightImageClient(socketPath: socketPath).fetch(name: "tiny")) { error in
            XCTAssertEqual((error as? WeightImageProtocolError).map { if case .server(let code, _) = $0 { code } else { "" } },
                           "permission_denied")
        }
        XCTAssertEqual(try WeightImageClient(socketPath: socketPath).list().count, 1)
        let peers = seen.all
        XCTAssertEqual(peers.map(\.1), ["tiny", nil])
        for (peer, _) in peers {
            XCTAssertEqual([peer.pid, Int32(bitPattern: peer.uid), Int32(bitPattern: peer.gid)],
                           [getpid(), Int32(bitPattern: getuid()), Int32(bitPattern: getgid())])
        }
    }

    func testPublishReplacesAndWithdrawRemovesWhileMappingsStayValid() throws {
        try startServer()
        let old = try WeightImageClient.attach(socketPath: socketPath, name: "tiny")
        let newModel = tinyModel(seed: 9)
        let replacement = try WeightImage(name: "tiny", model: newModel, hugePages: .off)
        server.publish(replacement)
        let new = try WeightImageClient.attach(socketPath: socketPath, name: "tiny")
        XCTAssertEqual(new.manifest.sha256, replacement.manifest.sha256)
        XCTAssertEqual(try new.makeModel().logProbs(tinyRequests), try newModel.logProbs(tinyRequests))
        server.withdraw(name: "tiny")
        image = nil
        XCTAssertEqual(try WeightImageClient(socketPath: socketPath).list(), [])
        // The first mapping still reads the first image's bytes.
        XCTAssertEqual(try old.makeModel().logProbs(tinyRequests), try model.logProbs(tinyRequests))
    }

    func testConnectionsBeyondTheLimitAreToldTheServerIsBusy() throws {
        try startServer(maxConnections: 1)
        let first = try rawConnect()
        XCTAssertEqual((try request(first, #"{"version":1,"op":"list"}"#))["ok"] as? Bool, true)
        let second = try rawConnect()
        XCTAssertEqual(errorCode(try XCTUnwrap(try rawReceive(second)).json), "busy")
        close(first)
    }

    func testStopEndsRunAndAStaleSocketFileIsReplaced() throws {
        let server = try WeightImageServer(listeningSocket: listening, images: [image])
        let finished = expectation(description: "run returned")
        Thread {
            do { try server.run() } catch { XCTFail("run: \(error)") }
            finished.fulfill()
        }.start()
        server.stop()
        wait(for: [finished], timeout: 10)

        XCTAssertThrowsError(try UnixSocket.listen(path: socketPath)) { error in
            XCTAssertEqual((error as? WeightImageProtocolError).map { "\($0)" },
                           "cannot listen on \(socketPath): another server is listening on it")
        }
        close(listening)
        listening = try UnixSocket.listen(path: socketPath)
        let regular = (socketPath as NSString).deletingLastPathComponent + "/regular"
        XCTAssertTrue(FileManager.default.createFile(atPath: regular, contents: Data("x".utf8)))
        XCTAssertThrowsError(try UnixSocket.listen(path: regular))
        XCTAssertTrue(FileManager.default.fileExists(atPath: regular), "a regular file is never removed")
    }
}

/// Peers an authorization callback saw (it runs on connection threads).
final class SeenPeers: @unchecked Sendable {
    private let lock = NSLock()
    private var peers: [(PeerCredentials, String?)] = []
    func add(_ peer: PeerCredentials, _ name: String?) { lock.withLock { peers.append((peer, name)) } }
    var all: [(PeerCredentials, String?)] { lock.withLock { peers } }
}
