import ArgumentParser
import Dispatch
import Foundation
import ModelFiles
import Tensor
import Transformer
import WeightImage

/// `srppo bench attach`: how fast a process gets a usable model from a served weight image, against
/// loading the checkpoint cold.
struct BenchAttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach-and-ready time of a served weight image vs a cold load of the checkpoint.",
        discussion: """
        Builds an image of the model, serves it on a temporary Unix socket in this process and \
        attaches it --repeats times per mode, each time over a new connection and a new mapping. \
        Times per attach:
          handout  connect → reply and descriptor received
          ready    descriptor received → model ready to compute log-probs
                   (manifest decoded and checked, seals, mmap, model set-up)
          first    the first scoring call on the new mapping (page faults included)
        Modes: shared (read-only), shared with --populate, private (copy-on-write), and shared from \
        new processes (`srppo image attach`; handout and ready only). The cold-load \
        series loads the checkpoint with ModelLoader --cold-repeats times (ready = load time). One \
        JSON line per series with median, min and max.

        Example:
          srppo bench attach --model SmolLM2.gguf --repeats 20 --cold-repeats 3
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Attaches per mode.")
    var repeats: Int = 20

    @Option(help: "Cold loads of the checkpoint.")
    var coldRepeats: Int = 3

    @Option(help: "Huge pages for the image: off, try or require.")
    var hugepages: HugePagePolicy = .try

    @Option(help: "Image dtype: f32, or bf16 (attached models score in bf16, compared with the loaded model in bf16).")
    var dtype: WeightDType = .f32

    @Option(help: "Tokens in the probe sequence scored after each attach.")
    var probeTokens: Int = 16

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard repeats >= 1, coldRepeats >= 1 else { throw ValidationError("--repeats and --cold-repeats must be at least 1") }
        guard probeTokens >= 2 else { throw ValidationError("--probe-tokens must be at least 2") }
    }

    func run() throws {
        threading.apply()
        let out = try JSONLines.Writer(path: nil)
        let probe = [ScoringRequest(tokens: (0..<probeTokens).map { Int32(1 + $0 * 37) }, firstScored: 1)]

        var loaded: LoadedModel?
        var cold = Series()
        for _ in 0..<coldRepeats {
            loaded = nil
            let start = DispatchTime.now()
            let model = try CLI.orExit { try ModelLoader.load(path: self.model) }
            let ready = elapsed(since: start)
            let scoreStart = DispatchTime.now()
            _ = try CLI.orExit { try model.model.logProbs(probe) }
            cold.add(ready: ready, first: elapsed(since: scoreStart))
            loaded = model
        }
        try out.write(cold.report(name: "cold-load", extra: ["model": model]))

        let image = try CLI.orExit { try WeightImage(name: "bench", loaded: loaded!, dtype: dtype, hugePages: hugepages) }
        loaded!.model.weightPrecision = dtype == .bf16 ? .bf16 : .f32
        let reference = try loaded!.model.logProbs(probe)
        loaded = nil
        try out.write(["series": "build", "backing": image.backing.summary, "dtype": dtype.rawValue, "data_bytes": image.manifest.dataBytes,
                       "fill_seconds": image.statistics.fillSeconds, "hash_seconds": image.statistics.hashSeconds,
                       "hash_mb_per_s": image.statistics.hashBytesPerSecond / 1e6])

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("srppo-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let socketPath = directory + "/weights.sock"
        let listening = try CLI.orExit { try UnixSocket.listen(path: socketPath) }
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
            for _ in 0..<repeats {
                let start = DispatchTime.now()
                let received = try CLI.orExit { try WeightImageClient(socketPath: socketPath).fetch(name: "bench") }
                var skipped = ""
                let mapped: MappedWeightImage? = try CLI.orExit {
                    do {
                        return try received.map(mode: mode, populate: populate)
                    } catch let error as WeightImageError {
                        guard case .copyOnWriteNeedsHugePages = error else { throw error }
                        skipped = "\(error)"
                        return nil
                    }
                }
                guard let mapped else {
                    // A short huge page pool is a property of the machine, not a failed benchmark.
                    try out.write(["series": "attach-\(name)", "skipped": skipped])
                    continue modes
                }
                let attachedModel = mapped.makeModel()
                let attach = elapsed(since: received.receivedAt)
                let handout = seconds(from: start, to: received.receivedAt)
                let scoreStart = DispatchTime.now()
                let logProbs = try attachedModel.logProbs(probe)
                series.add(ready: attach, first: elapsed(since: scoreStart), handout: handout)
                guard logProbs == reference else {
                    throw CLI.Failure(description: "log-probs from the attached image (\(name)) differ from the loaded model's")
                }
            }
            try out.write(series.report(name: "attach-\(name)", extra: ["backing": image.backing.summary]))
        }
        try out.write(try freshProcesses(socketPath: socketPath).report(name: "attach-shared-new-process",
                                                                        extra: ["backing": image.backing.summary]))
    }

    /// `srppo image attach` in new processes: what a trainer or scorer starting up sees, process
    /// start-up not counted but first use of the runtime's JSON and threads included.
    func freshProcesses(socketPath: String) throws -> Series {
        var series = Series()
        for _ in 0..<repeats {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            process.arguments = ["image", "attach", "--socket", socketPath, "--name", "bench"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0,
                  let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let handout = report["handout_ms"] as? Double, let attach = report["attach_ms"] as? Double else {
                throw CLI.Failure(description: "srppo image attach failed (exit \(process.terminationStatus)): \(String(decoding: data, as: UTF8.self))")
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

        func report(name: String, extra: [String: Any]) -> [String: Any] {
            func stats(_ values: [Double]) -> [String: Double] {
                let sorted = values.sorted()
                let middle = sorted.count / 2
                let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
                return ["median_ms": median * 1e3, "min_ms": sorted.first! * 1e3, "max_ms": sorted.last! * 1e3]
            }
            var line: [String: Any] = ["series": name, "repeats": ready.count, "threads": Parallel.threads, "ready": stats(ready)]
            if !first.isEmpty { line["first_logprob"] = stats(first) }
            if !handout.isEmpty { line["handout"] = stats(handout) }
            return line.merging(extra) { a, _ in a }
        }
    }
}
