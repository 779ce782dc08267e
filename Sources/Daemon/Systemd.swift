import CSystemd
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The service manager's side channel (sd_notify): state changes, status text, the watchdog and the
/// file descriptor store. Every call is a no-op without $NOTIFY_SOCKET (started by hand).
public enum ServiceManager {
    /// Sends one or more `KEY=value` assignments (newline-separated) in one datagram.
    public static func notify(_ assignments: String...) {
        let state = assignments.joined(separator: "\n")
        _ = srppo_sd_notify(state)
    }

    /// Sends assignments together with descriptors (`FDSTORE=1`, `FDNAME=…`). Returns false when the
    /// manager could not be told (no NOTIFY_SOCKET, or the send failed).
    @discardableResult
    public static func notify(_ state: String, passing fds: [Int32]) -> Bool {
        fds.withUnsafeBufferPointer { srppo_sd_notify_with_fds(state, $0.baseAddress, UInt32($0.count)) > 0 }
    }

    /// CLOCK_MONOTONIC in microseconds, which `RELOADING=1` carries as MONOTONIC_USEC.
    public static var monotonicMicroseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// The watchdog interval the manager expects pings within, when it expects any.
    public static var watchdogInterval: Double? {
        var usec: UInt64 = 0
        guard srppo_sd_watchdog_enabled(&usec) > 0, usec > 0 else { return nil }
        return Double(usec) / 1e6
    }

    /// Whether a notification socket is configured at all (the daemon runs under a manager).
    public static var isSupervised: Bool {
        ProcessInfo.processInfo.environment["NOTIFY_SOCKET"].map { !$0.isEmpty } ?? false
    }
}

/// The descriptors a service manager passed at start (LISTEN_FDS, LISTEN_FDNAMES): listening sockets
/// from socket activation and whatever the daemon put in the fd store before a restart.
public struct PassedDescriptors {
    /// Descriptors by name, in the order passed.
    public private(set) var byName: [String: [Int32]]

    public init(byName: [String: [Int32]] = [:]) {
        self.byName = byName
    }

    /// Reads LISTEN_FDS/LISTEN_FDNAMES (checked against LISTEN_PID by libsystemd, which also marks the
    /// descriptors close-on-exec).
    public static func fromEnvironment() -> PassedDescriptors {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = srppo_sd_listen_fds_with_names(&names)
        defer { srppo_sd_free_names(names) }
        guard count > 0 else { return PassedDescriptors() }
        var result = PassedDescriptors()
        for i in 0..<Int(count) {
            let fd = Int32(3 + i)
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            result.byName[name, default: []].append(fd)
        }
        return result
    }

    /// Removes and returns the one descriptor named `name`; more than one is an error.
    public mutating func take(_ name: String) throws -> Int32? {
        guard let fds = byName.removeValue(forKey: name) else { return nil }
        guard fds.count == 1 else {
            throw DaemonError.startup("systemd passed \(fds.count) descriptors named '\(name)'; expected one")
        }
        return fds[0]
    }

    /// Removes and returns every descriptor whose name starts with `prefix`.
    public mutating func take(prefix: String) -> [(name: String, fd: Int32)] {
        let names = byName.keys.filter { $0.hasPrefix(prefix) }.sorted()
        return names.flatMap { name in byName.removeValue(forKey: name)!.map { (name, $0) } }
    }

    /// Closes whatever was not taken (and returns the names, for the log).
    public mutating func closeRest() -> [String] {
        let names = byName.keys.sorted()
        for fds in byName.values { fds.forEach { _ = close($0) } }
        byName = [:]
        return names
    }
}
