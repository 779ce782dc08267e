import Client
import Dispatch
import Foundation
import Reward
import Compute
import Transformer

/// `bench daemon`: scoring throughput and latency through srppod with several numbers of concurrent
/// clients, against scoring in-process; and, with the unbatched control, whether batching across
/// clients is what helps.
public struct DaemonBenchmark {
    public struct Settings {
        public var pt: String
        public var sft: String
        /// Numbers of concurrent clients, one series each.
        public var clients: [Int]
        /// Requests per client per series.
        public var requests: Int
        public var promptTokens: Int
        public var responseTokens: Int
        /// The srppod executable to start.
        public var srppod: String
        /// Also run the multi-client series against an srppod that puts one item per forward pass.
        public var unbatchedControl: Bool

        public init(pt: String, sft: String, clients: [Int], requests: Int, promptTokens: Int, responseTokens: Int, srppod: String,
                    unbatchedControl: Bool) {
            self.pt = pt; self.sft = sft; self.clients = clients; self.requests = requests; self.promptTokens = promptTokens
            self.responseTokens = responseTokens; self.srppod = srppod; self.unbatchedControl = unbatchedControl
        }
    }

    public let settings: Settings

    public init(_ settings: Settings) {
        self.settings = settings
    }

    /// One line per series: in-process, then srppod at each number of clients (and unbatched).
    public func run(emit: Emit) throws {
        let s = settings
        let ptModel = try ModelLoader.load(path: s.pt).model
        // One checkpoint as both: one model, so in-process scoring runs one forward pass per request, as
        // srppod does for one image.
        let sftModel = s.sft == s.pt ? ptModel : try ModelLoader.load(path: s.sft).model
        let workload = Workload(clients: s.clients.max()!, requests: s.requests, promptTokens: s.promptTokens,
                                responseTokens: s.responseTokens, vocabSize: ptModel.config.vocabSize)
        let shape: ReportLine = ["prompt_tokens": s.promptTokens, "response_tokens": s.responseTokens, "threads": Parallel.threads]

        let embedded = try EmbeddedScorer(pt: ptModel, sft: sftModel)
        _ = try embedded.score([workload.requests[0][0]])  // warm-up
        var latencies: [Double] = []
        let start = DispatchTime.now()
        for request in workload.requests[0] {
            let begin = DispatchTime.now()
            _ = try embedded.score([request])
            latencies.append(Bench.seconds(from: begin))
        }
        let inProcess = Measurement(seconds: Bench.seconds(from: start), latencies: latencies, tokens: workload.tokens(clients: 1))
        try emit(inProcess.report(mode: "in-process", clients: 1, baseline: nil).merging(shape) { a, _ in a })

        for batchTokens in s.unbatchedControl ? [2048, 1] : [2048] {
            let daemon = try DaemonProcess(executable: s.srppod, pt: s.pt, sft: s.sft, threads: Parallel.threads, batchTokens: batchTokens)
            defer { daemon.stop() }
            var single: Measurement?
            for count in s.clients where batchTokens == 2048 || count > 1 {
                let measurement = try measure(workload, clients: count, socket: daemon.socket)
                if count == 1 { single = measurement }
                var line = measurement.report(mode: batchTokens == 1 ? "daemon-unbatched" : "daemon", clients: count, baseline: single)
                line["batch_tokens"] = batchTokens
                line["in_process_ratio"] = measurement.tokensPerSecond / inProcess.tokensPerSecond
                try emit(line.merging(shape) { a, _ in a })
            }
        }
    }

    /// Runs `clients` threads, each sending its requests one after another (as a PPO trainer does);
    /// the clock runs from the first send to the last answer. Batch statistics come from the daemon's metrics.
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
                        mine.append(Bench.seconds(from: begin))
                    }
                } catch {
                    outcome.add(failure: error)
                }
                outcome.add(latencies: mine)
                finished.leave()
            }.start()
        }
        finished.wait()
        let seconds = Bench.seconds(from: start)
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

    /// The same random requests for every series: client c sends `requests[c]`.
    struct Workload {
        let requests: [[TokenPair]]
        let tokensPerRequest: Int

        init(clients: Int, requests: Int, promptTokens: Int, responseTokens: Int, vocabSize: Int) {
            var generator = SeededGenerator(seed: 2024)
            func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(generator.next() % UInt64(vocabSize)) } }
            self.requests = (0..<clients).map { _ in
                (0..<requests).map { _ in TokenPair(prompt: tokens(promptTokens), response: tokens(responseTokens)) }
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

        func report(mode: String, clients: Int, baseline: Measurement?) -> ReportLine {
            var line: ReportLine = [
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
                    throw BenchmarkError("srppod metrics lack \(name)")
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
