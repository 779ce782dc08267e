import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP → reload, SIGTERM and SIGINT → stop, each run on a thread of its own (a signal handler may
/// only make async-signal-safe calls, so it writes the signal number to a pipe that thread reads).
/// The handlers are in place when `install` returns, before the daemon declares itself ready.
public enum DaemonSignals {
    nonisolated(unsafe) private static var pipeWrite: Int32 = -1

    public static func install(reload: @escaping @Sendable () -> Void, stop: @escaping @Sendable () -> Void) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw DaemonError.startup("pipe: \(String(cString: strerror(errno)))") }
        pipeWrite = fds[1]
        let readEnd = fds[0]
        let thread = Thread {
            var number: UInt8 = 0
            while true {
                let n = read(readEnd, &number, 1)
                if n < 0 && errno == EINTR { continue }
                guard n == 1 else { return }
                if Int32(number) == SIGHUP {
                    reload()
                } else {
                    // Stopping may take the grace period; further signals still get read meanwhile.
                    Thread { stop() }.start()
                }
            }
        }
        thread.name = "srppod-signals"
        thread.start()
        for number in [SIGHUP, SIGTERM, SIGINT] {
            signal(number) { received in
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(DaemonSignals.pipeWrite, &byte, 1)
            }
        }
    }
}
