import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
import SystemSupport
#endif

/// The weight image hand-out protocol, version 1 (docs/weight-image-protocol.md): over a Unix-domain
/// stream socket, each message is a 4-byte big-endian length and that many bytes of a UTF-8 JSON
/// object. A reply to `attach` carries the image's sealed memfd as SCM_RIGHTS ancillary data.
public enum WeightImageProtocol {
    public static let version = 1
    /// Largest request a server reads; a longer one is answered `too_large` and the connection closed.
    public static let maxRequestBytes = 64 << 10
    /// Largest reply a client reads (a manifest of a very deep model stays far below it).
    public static let maxReplyBytes = 16 << 20
    static let lengthBytes = 4

    /// Error codes a server answers with.
    public enum ErrorCode: String, Codable, Sendable {
        case badRequest = "bad_request"
        case unsupportedVersion = "unsupported_version"
        case unknownOp = "unknown_op"
        case unknownImage = "unknown_image"
        case hashMismatch = "hash_mismatch"
        case permissionDenied = "permission_denied"
        case tooLarge = "too_large"
        case busy
    }

    struct Request: Codable {
        var version: Int
        var op: String
        var name: String?
        var sha256: String?
    }

    struct ErrorBody: Codable {
        var code: ErrorCode
        var message: String
    }

    struct Reply: Codable {
        var version: Int
        var ok: Bool
        var manifest: WeightImageManifest?
        var backing: ImageBacking?
        var images: [ImageSummary]?
        var error: ErrorBody?
    }

    static func encode<T: Encodable>(_ value: T) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Messages hold plain values only; encoding cannot fail.
        return try! encoder.encode(value)
    }
}

/// One image a server offers (the `list` reply).
public struct ImageSummary: Codable, Sendable, Equatable {
    public let name: String
    public let sha256: String
    public let dtype: WeightDType
    public let dataBytes: Int
    public let backing: ImageBacking

    enum CodingKeys: String, CodingKey {
        case name, sha256, dtype, dataBytes = "data_bytes", backing
    }
}

public enum WeightImageProtocolError: Error, CustomStringConvertible, Equatable {
    case badSocketPath(path: String, reason: String)
    case socketInUse(path: String, reason: String)
    case messageTooLarge(size: Int, limit: Int)
    /// The peer closed the connection in the middle of a message.
    case truncatedMessage(received: Int, expected: Int)
    case malformedMessage(problem: String)
    /// Descriptors arrived where none (or fewer) were expected, or the kernel dropped some.
    case unexpectedDescriptors(problem: String)
    case timedOut(seconds: Double)
    /// The server answered with an error.
    case server(code: String, message: String)

    public var description: String {
        switch self {
        case let .badSocketPath(path, reason): return "socket path '\(path)': \(reason)"
        case let .socketInUse(path, reason): return "cannot listen on \(path): \(reason)"
        case let .messageTooLarge(size, limit): return "message of \(size) bytes exceeds the limit of \(limit)"
        case let .truncatedMessage(received, expected):
            return "connection closed after \(received) of \(expected) bytes of a message"
        case let .malformedMessage(problem): return "malformed message: \(problem)"
        case let .unexpectedDescriptors(problem): return "file descriptors: \(problem)"
        case let .timedOut(seconds): return "nothing received within \(seconds) s"
        case let .server(code, message): return "server refused (\(code)): \(message)"
        }
    }
}

/// Length-prefixed messages, optionally carrying descriptors.
enum Framing {
    /// Sends one message; `fd`, when given, travels with its first byte.
    static func send(_ socket: Int32, _ body: Data, passing fd: Int32? = nil) throws {
        var message = Data(capacity: WeightImageProtocol.lengthBytes + body.count)
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { message.append(contentsOf: $0) }
        message.append(body)
        try message.withUnsafeBytes { bytes in
            var sent = 0
            var descriptor = fd ?? -1
            while sent < bytes.count {
                let n = try SystemCall.retrying("sendmsg") {
                    srppo_send_with_fd(socket, bytes.baseAddress! + sent, bytes.count - sent, descriptor)
                }
                sent += n
                descriptor = -1
            }
        }
    }

    /// Receives one message of at most `limit` body bytes, with any descriptors that came with it
    /// (the caller owns them). Returns nil when the peer closed the connection between messages.
    static func receive(_ socket: Int32, limit: Int, timeout: Double) throws -> (body: Data, fds: [Int32])? {
        var fds: [Int32] = []
        do {
            var header = [UInt8](repeating: 0, count: WeightImageProtocol.lengthBytes)
            let headerRead = try header.withUnsafeMutableBytes { try read(socket, into: $0, fds: &fds, timeout: timeout) }
            if headerRead == 0 { return nil }
            guard headerRead == header.count else {
                throw WeightImageProtocolError.truncatedMessage(received: headerRead, expected: header.count)
            }
            let length = Int(header.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) })
            guard length <= limit else { throw WeightImageProtocolError.messageTooLarge(size: length, limit: limit) }
            guard length > 0 else { throw WeightImageProtocolError.malformedMessage(problem: "empty message") }
            var body = Data(count: length)
            let bodyRead = try body.withUnsafeMutableBytes { try read(socket, into: $0, fds: &fds, timeout: timeout) }
            guard bodyRead == length else {
                throw WeightImageProtocolError.truncatedMessage(received: WeightImageProtocol.lengthBytes + bodyRead,
                                                                expected: WeightImageProtocol.lengthBytes + length)
            }
            return (body, fds)
        } catch {
            fds.forEach(SystemCall.close)
            throw error
        }
    }

    /// Reads until `buffer` is full or the peer closes; collects descriptors on the way.
    private static func read(_ socket: Int32, into buffer: UnsafeMutableRawBufferPointer, fds: inout [Int32],
                             timeout: Double) throws -> Int {
        var done = 0
        var received = [Int32](repeating: -1, count: 4)
        while done < buffer.count {
            var count: Int32 = 0, truncated: Int32 = 0
            let n: Int
            do {
                n = try SystemCall.retrying("recvmsg") {
                    srppo_recv_with_fds(socket, buffer.baseAddress! + done, buffer.count - done, &received,
                                        Int32(received.count), &count, &truncated)
                }
            } catch let error as SystemCallError where error.errno == EAGAIN {
                throw WeightImageProtocolError.timedOut(seconds: timeout)
            }
            fds += received[0..<Int(count)]
            if truncated != 0 {
                throw WeightImageProtocolError.unexpectedDescriptors(problem: "more than the receiver accepts; the kernel dropped some")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }
}
