import ArgumentParser
import Client
import Dispatch
import Foundation
import ModelFiles
import Reward
import Tensor
import Transformer
import WireProtocol

/// `srppo bench daemon`: scoring throughput and latency through srppod with 1, 4, 16 concurrent
/// clients, against scoring in-process; and whether batching across clients is what helps.
struct BenchDaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Throughput and p50/p99 latency of srppod with concurrent clients vs in-process scoring.",
        discussion: """
        Makes --requests random requests per client (one item of --prompt-tokens + --response-tokens \
        tokens each, the same for every series), scores them in-process one at a time (EmbeddedScorer), \
        then starts srppod (beside this srppo, on a temporary socket) and sends them from each number \
        of --clients at once, every client waiting for each answer before sending the next (as a PPO \
        trainer does). With --unbatched-control the multi-client series run again against an srppod \
        that puts one item per forward pass (--batch-tokens 1): the difference is what batching across \
        clients buys. One JSON line per series: tokens/s (prompt + response, each scored under PT and \
        SFT), requests/s, latency p50/p99, mean items per batch, and the speed-up over one client.

        Example:
          srppo bench daemon --pt SmolLM2-135M-Instruct.Q4_1.gguf --sft SmolLM2-135M-Instruct.Q4_1.gguf --clients 1,4,16
        """
    )

    @Option(help: "Pretrained model.") var pt: String
    @Option(help: "SFT model.") var sft: String
    @Option(help: "Comma-separated numbers of concurrent clients.") var clients: String = "1,4,16"
    @Option(help: "Requests per client per series.") var requests: Int = 8
    @Option(help: "Prompt tokens per request.") var promptTokens: Int = 32
    @Option(help: "Response tokens per request.") var responseTokens: Int = 32
    @OptionGroup var threading: ThreadOptions
    @Option(help: "srppod executable (default: beside this srppo).") var srppod: String?
    @Flag(help: "Also run the multi-client series against srppod with --batch-tokens 1.") var unbatchedControl = false

    func validate() throws {
        guard !clientCounts.isEmpty, clientCounts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--clients must list positive numbers, like 1,4,16") }
        guard requests >= 1, promptTokens >= 1, responseTokens >= 1 else {
            throw ValidationError("--requests, --prompt-tokens and --response-tokens must be at least 1")
        }
    }

    var clientCounts: [Int] { clients.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        threading.apply()
        let out = try JSONLines.Writer(path: nil)
        let ptModel = try CLI.orExit { try ModelLoader.load(path: pt).model }
        // One checkpoint as both: one model, so in-process scoring runs one forward pass per request, as
        // srppod does for one image.
        let sftModel = sft == pt ? ptModel : try CLI.orExit { try ModelLoader.load(path: sft).model }
        let workload = Workload(clients: clientCounts.max()!, requests: requests, promptTokens: promptTokens,
                                responseTokens: responseTokens, vocabSize: ptModel.config.vocabSize)
        let shape: [String: Any] = ["prompt_tokens": promptTokens, "response_tokens": responseTokens, "threads": Parallel.threads]

        let embedded = try CLI.orExit { try EmbeddedScorer(pt: ptModel, sft: sftModel) }
        _ = try embedded.score([workload.requests[0][0]])  // warm-up
        var latencies: [Double] = []
        let start = DispatchTime.now()
        for request in workload.requests[0] {
            let begin = DispatchTime.now()
            _ = try CLI.orExit { try embedded.score([request]) }
            latencies.append(elapsed(since: begin))
        }
        let inProcess = Measurement(seconds: elapsed(since: start), latencies: latencies, tokens: workload.tokens(clients: 1))
        try out.write(inProcess.report(mode: "in-process", clients: 1, baseline: nil).merging(shape) { a, _ in a })

        for batchTokens in unbatchedControl ? [2048, 1] : [2048] {
            let daemon = try CLI.orExit { try DaemonProcess(executable: srppodPath(), pt: pt, sft: sft, threads: Parallel.threads, batchTokens: batchTokens) }
            defer { daemon.stop() }
            var single: Measurement?
            for count in clientCounts where batchTokens == 2048 || count > 1 {
                let measurement = try CLI.orExit { try measure(workload, clients: count, socket: daemon.socket) }
                if count == 1 { single = measurement }
                var line = measurement.report(mode: batchTokens == 1 ? "daemon-unbatched" : "daemon", clients: count, baseline: single)
                line["batch_tokens"] = batchTokens
                line["in_process_ratio"] = measurement.tokensPerSecond / inProcess.tokensPerSecond
                try out.write(line.merging(shape) { a, _ in a })
            }
        }
    }

    /// Runs `clients` threads, each sending its requests one after another; the clock runs from the
    /// first send to the last answer. Batch statistics come from the daemon's metrics.
    func measure(_ workload: Workload, clients count: Int, socket: String) throws -> Measurement {
        let scorers = try (0..<count).map { try DaemonScorer(socketPath: socket, clientName: "bench-\($0)") }
        for scorer in scorers { _ = try scorer.score([workload.requests[0][0]]) }  // connect and warm up
        let before = try BatchCounters(scorers[0].client.metrics())
        let outcome = ClientOutcome()
        let finished = DispatchGroup()
        let start = DispatchTime.now()
        // One thread per client (a dispatch pool would run only as many clients as there are cores).
        for client in 0..<count {
            finished.enter()
            Thread {
                var mine: [Double] = []
                do {
                    for request in workload.requests[client] {
                        let begin = DispatchTime.now()
                        _ = try scorers[client].score([request])
                        mine.append(elapsed(since: begin))
                    }
                } catch {
                    outcome.add(failure: error)
                }
                outcome.add(latencies: mine)
                finished.leave()
            }.start()
        }
        finished.wait()
        let seconds = elapsed(since: start)
        let (latencies, failure) = outcome.collected
        if let failure { throw failure }
        let after = try BatchCounters(scorers[0].client.metrics())
        var measurement = Measurement(seconds: seconds, latencies: latencies, tokens: workload.tokens(clients: count))
        measurement.meanBatchItems = after.meanItems(since: before)
        return measurement
    }

    /// The client threads' latencies and first error, behind a lock.
    final class ClientOutcome: @unchecked Sendable {
        private let lock = NSLock()
        private var latencies: [Double] = []
        private var failure: Error?

        func add(latencies more: [Double]) { lock.withLock { latencies += more } }
        func add(failure error: Error) { lock.withLock { if failure == nil { failure = error } } }
        var collected: (latencies: [Double], failure: Error?) { lock.withLock { (latencies, failure) } }
    }

    func srppodPath() -> String {
        srppod ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("srppod").path
    }

    /// The same random requests for every series: client c sends `requests[c]`.
    struct Workload {
        let requests: [[RewardRequest]]
        let tokensPerRequest: Int

        init(clients: Int, requests: Int, promptTokens: Int, responseTokens: Int, vocabSize: Int) {
            var generator = SeededGenerator(seed: 2024)
            func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(generator.next() % UInt64(vocabSize)) } }
            self.requests = (0..<clients).map { _ in
                (0..<requests).map { _ in RewardRequest(prompt: tokens(promptTokens), response: tokens(responseTokens)) }
            }
            tokensPerRequest = promptTokens + responseTokens
        }

        func tokens(clients: Int) -> Int { clients * requests[0].count * tokensPerRequest }
    }

    struct Measurement {
        let seconds: Double
        let latencies: [Double]
        let tokens: Int
        var meanBatchItems: Double?

        var tokensPerSecond: Double { Double(tokens) / seconds }

        func percentile(_ p: Double) -> Double {
            let sorted = latencies.sorted()
            return sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
        }

        func report(mode: String, clients: Int, baseline: Measurement?) -> [String: Any] {
            var line: [String: Any] = [
                "mode": mode, "clients": clients, "requests": latencies.count, "seconds": seconds,
                "tokens_per_s": tokensPerSecond, "requests_per_s": Double(latencies.count) / seconds,
                "p50_ms": percentile(0.5) * 1e3, "p99_ms": percentile(0.99) * 1e3,
            ]
            if let meanBatchItems { line["mean_batch_items"] = meanBatchItems }
            if let baseline { line["speedup_vs_1_client"] = tokensPerSecond / baseline.tokensPerSecond }
            return line
        }
    }

    /// srppod_batch_items_sum and _count from the metrics text.
    struct BatchCounters {
        let sum: Double
        let count: Double

        init(_ text: String) throws {
            func value(_ name: String) throws -> Double {
                guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + " ") }),
                      let number = Double(line.split(separator: " ")[1]) else {
                    throw CLI.Failure(description: "srppod metrics lack \(name)")
                }
                return number
            }
            sum = try value("srppod_batch_items_sum")
            count = try value("srppod_batch_items_count")
        }

        func meanItems(since before: BatchCounters) -> Double {
            count > before.count ? (sum - before.sum) / (count - before.count) : 0
        }
    }
}

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
            throw CLI.Failure(description: "cannot start \(executable): \(error)")
        }
        // Lines until {"event":"ready"}; end of output first means srppod exited.
        var pending = Data()
        while true {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw CLI.Failure(description: "srppod exited before it was ready") }
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
