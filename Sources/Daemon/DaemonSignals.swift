import Foundation
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP → reload, SIGTERM and SIGINT → stop, each run on the signal thread (`SignalThread`); the
/// handlers are in place when `install` returns, before the daemon declares itself ready.
public enum DaemonSignals {
    public static func install(reload: @escaping @Sendable () -> Void, stop: @escaping @Sendable () -> Void) throws {
        try SignalThread.install([SIGHUP, SIGTERM, SIGINT], threadName: "srppod-signals") { number in
            if number == SIGHUP {
                reload()
            } else {
                // Stopping may take the grace period; further signals still get read meanwhile.
                Thread { stop() }.start()
            }
        }
    }
}
