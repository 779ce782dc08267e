import CSystemd
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's structured log: each entry is a message and `KEY=value` fields. Under systemd (stderr
/// connected to the journal, $JOURNAL_STREAM) entries go to journald with their fields as journal
/// fields (`SRPPOD_CLIENT=…`, queryable with `journalctl SRPPOD_CLIENT=…`); otherwise one line each on
/// stderr: `srppod: info: message key=value …`.
public final class DaemonLog: @unchecked Sendable {
    public enum Level: Int32, Comparable, Sendable {
        // syslog priorities, as journald takes them
        case error = 3, warning = 4, info = 6, debug = 7

        var name: String {
            switch self {
            case .error: return "error"
            case .warning: return "warning"
            case .info: return "info"
            case .debug: return "debug"
            }
        }

        public static func < (a: Level, b: Level) -> Bool { a.rawValue > b.rawValue }
    }

    public enum Destination: String, CaseIterable, Sendable {
        /// journald when stderr is the journal stream, else stderr.
        case auto
        case journal, stderr
    }

    private let useJournal: Bool
    private let minimum: Level
    private let lock = NSLock()

    public init(destination: Destination = .auto, minimum: Level = .info) {
        switch destination {
        case .journal: useJournal = true
        case .stderr: useJournal = false
        case .auto: useJournal = Self.stderrIsJournal()
        }
        self.minimum = minimum
    }

    public func error(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.error, message, fields) }
    public func warning(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.warning, message, fields) }
    public func info(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.info, message, fields) }
    public func debug(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.debug, message, fields) }

    public func log(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String>) {
        guard level >= minimum else { return }
        if useJournal {
            let journalFields = fields.map { "SRPPOD_\($0.key.uppercased())=\($0.value)" }
            var pointers = journalFields.map { strdup($0) }
            defer { pointers.forEach { free($0) } }
            let sent = pointers.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                    srppo_sd_journal_send(level.rawValue, "srppod", message, $0, Int32(buffer.count))
                }
            }
            if sent >= 0 { return }
        }
        var line = "srppod: \(level.name): \(message)"
        for (key, value) in fields { line += " \(key)=\(Self.quoted(value))" }
        line += "\n"
        lock.withLock { FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// Values with spaces or quotes are quoted, so each line splits into fields unambiguously.
    static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// systemd sets $JOURNAL_STREAM to "device:inode" of the stream it connected stderr to.
    private static func stderrIsJournal() -> Bool {
        guard let value = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":").compactMap { UInt64($0) }
        var info = stat()
        guard parts.count == 2, fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == parts[0] && UInt64(info.st_ino) == parts[1]
    }
}

/// Failures that stop the daemon from starting or serving.
public enum DaemonError: Error, CustomStringConvertible {
    case startup(String)
    case configuration(String)

    public var description: String {
        switch self {
        case let .startup(text): return text
        case let .configuration(text): return "configuration: \(text)"
        }
    }
}
