#if canImport(Glibc)
import Glibc
#endif

// System calls as the project makes them (after swift-system and swift-nio): one wrapper that retries
// EINTR and throws a typed error naming the call, used by every module that talks to the kernel.

/// A failed system call: which one, on what, and errno.
public struct SystemCallError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The one wrapper around system calls: retries when interrupted by a signal (EINTR) and turns the
/// -1/errno convention into a thrown `SystemCallError`.
public enum SystemCall {
    @discardableResult
    public static func retrying<T: BinaryInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            let error = errno
            if error == EINTR { continue }
            throw SystemCallError(call: call(), errno: error)
        }
    }

    /// close(2) is never retried: on Linux the descriptor is gone even when it reports EINTR.
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}
