import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers see either the old content or the complete new one, never a torn
/// write: data goes to a temporary file in the same directory, is fsynced, renamed over the target,
/// and the directory is fsynced so the rename itself survives a crash. Failures are
/// `SystemCallError`s naming the call and the file.
public enum AtomicFile {
    /// A sink for the new content.
    public final class Output {
        let fd: Int32
        let path: String
        init(fd: Int32, path: String) { self.fd = fd; self.path = path }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                done += try SystemCall.retrying("write(\(path))") { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
            }
        }

        public func write(_ data: Data) throws {
            try data.withUnsafeBytes { try write($0) }
        }
    }

    public static func write(to path: String, _ body: (Output) throws -> Void) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try SystemCall.retrying("open(\(temp))") { open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        var succeeded = false
        defer {
            if !succeeded { unlink(temp) }
        }
        do {
            try body(Output(fd: fd, path: temp))
            try SystemCall.retrying("fsync(\(temp))") { fsync(fd) }
        } catch {
            SystemCall.close(fd)
            throw error
        }
        // close(2) reports a delayed write error (NFS) once: checked, never retried.
        guard Glibc.close(fd) == 0 else { throw SystemCallError(call: "close(\(temp))", errno: errno) }
        try SystemCall.retrying("rename(\(temp), \(path))") { rename(temp, path) }
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
