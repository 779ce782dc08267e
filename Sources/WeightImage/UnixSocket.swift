import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
import SystemSupport
#endif

/// Who is at the other end of a Unix socket, as the kernel saw it when the connection was made
/// (SO_PEERCRED).
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

/// Unix-domain stream sockets: binding, connecting, timeouts and peer credentials.
public enum UnixSocket {
    /// Binds and listens on `path`. A socket file left by a server that is gone is replaced; a live
    /// server's socket, or any other kind of file, is an error.
    public static func listen(path: String, backlog: Int32 = 64) throws -> Int32 {
        var address = try self.address(path)
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw WeightImageProtocolError.socketInUse(path: path, reason: "a file that is not a socket exists there")
            }
            if let probe = try? connect(path: path) {
                SystemCall.close(probe)
                throw WeightImageProtocolError.socketInUse(path: path, reason: "another server is listening on it")
            }
            unlink(path)
        }
        let fd = try SystemCall.retrying("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            _ = try withUnsafePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    try SystemCall.retrying("bind(\(path))") { bind(fd, raw, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
            try SystemCall.retrying("listen(\(path))") { Glibc.listen(fd, backlog) }
        } catch {
            SystemCall.close(fd)
            throw error
        }
        return fd
    }

    /// A connected stream socket to `path`.
    public static func connect(path: String) throws -> Int32 {
        var address = try self.address(path)
        let fd = try SystemCall.retrying("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            _ = try withUnsafePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    try SystemCall.retrying("connect(\(path))") { Glibc.connect(fd, raw, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
        } catch {
            SystemCall.close(fd)
            throw error
        }
        return fd
    }

    /// Receive and send timeouts: a blocked read or write fails with EAGAIN after `seconds`.
    static func setTimeouts(_ fd: Int32, seconds: Double) throws {
        var time = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            try SystemCall.retrying("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)") {
                setsockopt(fd, SOL_SOCKET, option, &time, socklen_t(MemoryLayout<timeval>.size))
            }
        }
    }

    public static func peerCredentials(_ fd: Int32) throws -> PeerCredentials {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        try SystemCall.retrying("getsockopt(SO_PEERCRED)") { srppo_peer_credentials(fd, &pid, &uid, &gid) }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    /// The file a listening socket is bound to (systemd's `ListenStream=` path for a passed socket);
    /// nil for an unnamed or abstract socket.
    public static func boundPath(_ fd: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let status = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        let path = withUnsafeBytes(of: &address.sun_path) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return path.isEmpty ? nil : path
    }

    private static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw WeightImageProtocolError.badSocketPath(path: path, reason: "must be 1 to \(capacity - 1) bytes long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }
}
