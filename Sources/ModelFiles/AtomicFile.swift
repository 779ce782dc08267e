import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers see either the old content or the complete new one, never a torn
/// write: data goes to a temporary file in the same directory, is fsynced, renamed over the target,
/// and the directory is fsynced so the rename itself survives a crash.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let operation: String
        public let errno: Int32
        public var description: String { "\(path): \(operation) failed: \(String(cString: strerror(errno)))" }
    }

    /// A sink for the new content.
    public final class Output {
        let fd: Int32
        let path: String
        init(fd: Int32, path: String) { self.fd = fd; self.path = path }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw WriteError(path: path, operation: "write", errno: errno)
                }
                done += n
            }
        }

        public func write(_ data: Data) throws {
            try data.withUnsafeBytes { try write($0) }
        }
    }

    public static func write(to path: String, _ body: (Output) throws -> Void) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(path: temp, operation: "create", errno: errno) }
        var succeeded = false
        defer {
            if !succeeded { unlink(temp) }
        }
        do {
            try body(Output(fd: fd, path: temp))
            guard fsync(fd) == 0 else { throw WriteError(path: temp, operation: "fsync", errno: errno) }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw WriteError(path: temp, operation: "close", errno: errno) }
        guard rename(temp, path) == 0 else { throw WriteError(path: path, operation: "rename", errno: errno) }
        succeeded = true
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(data) }
    }
}
