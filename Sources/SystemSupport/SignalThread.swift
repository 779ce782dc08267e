import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Signals handled on a thread of their own. A signal handler may only make async-signal-safe calls,
/// so the handler writes the signal's number to a pipe, and a thread reads it and runs `handle`.
/// The handlers are in place when `install` returns: a signal sent right after a server says it is
/// ready is not lost. Once per process (srppod: reload and stop; `srppo image serve`: stop).
public enum SignalThread {
    /// Write end of the pipe; the handler reads it from here (it cannot capture anything).
    nonisolated(unsafe) private static var pipeWrite: Int32 = -1

    public static func install(_ signals: [Int32], threadName: String, handle: @escaping @Sendable (Int32) -> Void) throws {
        precondition(pipeWrite < 0, "SignalThread.install runs once per process")
        var fds: [Int32] = [-1, -1]
        try SystemCall.retrying("pipe") { pipe(&fds) }
        pipeWrite = fds[1]
        let readEnd = fds[0]
        let thread = Thread {
            var number: UInt8 = 0
            let reason: String
            do {
                while try SystemCall.retrying("read signal pipe", { read(readEnd, &number, 1) }) == 1 { handle(Int32(number)) }
                reason = "the signal pipe was closed"
            } catch {
                reason = "\(error)"
            }
            // Never seen here, but a server that silently stopped reacting to SIGTERM would be worse.
            FileHandle.standardError.write(Data("\(threadName): signals are no longer handled: \(reason)\n".utf8))
        }
        thread.name = threadName
        thread.start()
        for number in signals {
            signal(number) { received in
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(SignalThread.pipeWrite, &byte, 1)
            }
        }
    }
}
