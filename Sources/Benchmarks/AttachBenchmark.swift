import Dispatch
import Foundation
import Compute
import Transformer
import WeightImage

/// `bench attach`: how fast a process gets a usable model from a served weight image, against
/// loading the checkpoint cold.
public struct AttachBenchmark {
    public struct Settings {
        /// A GGUF file, a safetensors file or a Hugging Face model folder.
        public var model: String
        /// Attaches per mode.
        public var repeats: Int
        /// Cold loads of the checkpoint.
        public var coldRepeats: Int
        public var hugePages: HugePagePolicy
        /// The image's dtype (attached models score in it, compared with the loaded model in it).
        public var dtype: WeightDType
        /// Tokens in the probe sequence scored after each attach.
        public var probeTokens: Int
        /// The srppo executable whose `image attach` the new-process series runs.
        public var srppo: String

        public init(model: String, repeats: Int, coldRepeats: Int, hugePages: HugePagePolicy, dtype: WeightDType, probeTokens: Int,
                    srppo: String) {
            self.model = model; self.repeats = repeats; self.coldRepeats = coldRepeats; self.hugePages = hugePages
            self.dtype = dtype; self.probeTokens = probeTokens; self.srppo = srppo
        }
    }

    public let settings: Settings

    public init(_ settings: Settings) {
        self.settings = settings
    }

    /// One line per series: cold loads, the image's build, then attaches in each mode and from new
    /// processes, served on a temporary Unix socket in this process.
    public func run(emit: Emit) throws {
        let s = settings
        let probe = [ScoringRequest(tokens: (0..<s.probeTokens).map { Int32(1 + $0 * 37) }, firstScored: 1)]

        var loaded: LoadedModel?
        var cold = Series()
        for _ in 0..<s.coldRepeats {
            loaded = nil
            let start = DispatchTime.now()
            let model = try ModelLoader.load(path: s.model)
            let ready = Bench.seconds(from: start)
            let scoreStart = DispatchTime.now()
            _ = try model.model.logProbs(probe)
            cold.add(ready: ready, first: Bench.seconds(from: scoreStart))
            loaded = model
        }
        try emit(cold.report(name: "cold-load", extra: ["model": s.model]))

        let image = try WeightImage(name: "bench", loaded: loaded!, dtype: s.dtype, hugePages: s.hugePages)
        loaded!.model.weightPrecision = s.dtype == .bf16 ? .bf16 : .f32
        let reference = try loaded!.model.logProbs(probe)
        loaded = nil
        try emit(["series": "build", "backing": image.backing.summary, "dtype": s.dtype.rawValue, "data_bytes": image.manifest.dataBytes,
                  "fill_seconds": image.statistics.fillSeconds, "hash_seconds": image.statistics.hashSeconds,
                  "hash_mb_per_s": image.statistics.hashBytesPerSecond / 1e6])

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("srppo-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let socketPath = directory + "/weights.sock"
        let listening = try UnixSocket.listen(path: socketPath)
        let server = try WeightImageServer(listeningSocket: listening, images: [image])
        server.start()
        defer {
            server.stop()
            close(listening)
            try? FileManager.default.removeItem(atPath: directory)
        }

        modes: for (name, mode, populate) in [("shared", AttachMode.shared, false), ("shared-populate", .shared, true),
                                              ("private", .private, false)] {
            var series = Series()
            for _ in 0..<s.repeats {
                let start = DispatchTime.now()
                let received = try WeightImageClient(socketPath: socketPath).fetch(name: "bench")
                let mapped: MappedWeightImage
                do {
                    mapped = try received.map(mode: mode, populate: populate)
                } catch let error as WeightImageError {
                    guard case .copyOnWriteNeedsHugePages = error else { throw error }
                    // A short huge page pool is a property of the machine, not a failed benchmark.
                    try emit(["series": "attach-\(name)", "skipped": "\(error)"])
                    continue modes
                }
                let attachedModel = mapped.makeModel()
                let attach = Bench.seconds(from: received.receivedAt)
                let handout = Bench.seconds(from: start, to: received.receivedAt)
                let scoreStart = DispatchTime.now()
                let logProbs = try attachedModel.logProbs(probe)
                series.add(ready: attach, first: Bench.seconds(from: scoreStart), handout: handout)
                guard logProbs == reference else {
                    throw BenchmarkError("log-probs from the attached image (\(name)) differ from the loaded model's")
                }
            }
            try emit(series.report(name: "attach-\(name)", extra: ["backing": image.backing.summary]))
        }
        try emit(try freshProcesses(socketPath: socketPath).report(name: "attach-shared-new-process",
                                                                  extra: ["backing": image.backing.summary]))
    }

    /// `srppo image attach` in new processes: what a trainer or scorer starting up sees, process
    /// start-up not counted but first use of the runtime's JSON and threads included.
    func freshProcesses(socketPath: String) throws -> Series {
        var series = Series()
        for _ in 0..<settings.repeats {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: settings.srppo)
            process.arguments = ["image", "attach", "--socket", socketPath, "--name", "bench"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0,
                  let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let handout = report["handout_ms"] as? Double, let attach = report["attach_ms"] as? Double else {
                throw BenchmarkError("srppo image attach failed (exit \(process.terminationStatus)): \(String(decoding: data, as: UTF8.self))")
            }
            series.add(ready: attach / 1e3, handout: handout / 1e3)
        }
        return series
    }

    /// Timings of one series, in seconds.
    struct Series {
        var handout: [Double] = []
        var ready: [Double] = []
        var first: [Double] = []

        mutating func add(ready: Double, first: Double? = nil, handout: Double? = nil) {
            self.ready.append(ready)
            if let first { self.first.append(first) }
            if let handout { self.handout.append(handout) }
        }

        func report(name: String, extra: ReportLine) -> ReportLine {
            func stats(_ values: [Double]) -> [String: Double] {
                ["median_ms": Bench.median(values) * 1e3, "min_ms": values.min()! * 1e3, "max_ms": values.max()! * 1e3]
            }
            var line: ReportLine = ["series": name, "repeats": ready.count, "threads": Parallel.threads, "ready": stats(ready)]
            if !first.isEmpty { line["first_logprob"] = stats(first) }
            if !handout.isEmpty { line["handout"] = stats(handout) }
            return line.merging(extra) { a, _ in a }
        }
    }
}
