import Foundation

/// srppod started for a benchmark on a temporary socket, stopped with SIGTERM.
final class DaemonProcess {
    let socket: String
    private let process = Process()
    private let directory: String

    init(executable: String, pt: String, sft: String, threads: Int, batchTokens: Int) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("srppo-bench-daemon-\(getpid())-\(batchTokens)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socket = directory + "/http.sock"
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--pt", pt, "--sft", sft, "--socket", socket, "--threads", "\(threads)", "--batch-tokens", "\(batchTokens)",
                             "--hugepages", "off", "--log", "stderr"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw BenchmarkError("cannot start \(executable): \(error)")
        }
        // Lines until {"event":"ready"}; end of output first means srppod exited.
        var pending = Data()
        while true {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw BenchmarkError("srppod exited before it was ready") }
            pending.append(chunk)
            if String(decoding: pending, as: UTF8.self).contains("\"event\":\"ready\"") { break }
        }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
