import Foundation
import ModelFiles
import SystemSupport
import Transformer

/// A training run's folder: its config, metrics as JSONL, checkpoints, and a progress line on
/// stderr.
///
///     runs/<name>/
///       run-config.json          the configuration the run was started with
///       metrics.jsonl            one JSON object per optimizer step (and per evaluation)
///       checkpoints/step-000120/ complete checkpoints (temp folders are renamed into place)
public final class RunFolder {
    public let path: String
    public var metricsPath: String { path + "/metrics.jsonl" }
    public var checkpointsPath: String { path + "/checkpoints" }
    private var metrics: FileHandle?

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path + "/checkpoints", withIntermediateDirectories: true)
    }

    /// Saves the run's configuration (atomically).
    public func saveConfig<C: Encodable>(_ config: C, name: String = "run-config.json") throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(encoder.encode(config), to: path + "/" + name)
    }

    /// Settings from a JSON file given to a new run (`--config`): its keys replace those of `defaults`
    /// (nested groups key by key, `JSONLayers`), so the file needs only what it changes; a key that is
    /// no setting is refused (a misspelt one would otherwise be ignored). `kind` names them in errors ("SFT").
    public static func settings<C: Codable>(_ type: C.Type, file: String, kind: String, over defaults: C) throws -> C {
        // The settings are the type's stored properties (their synthesized coding keys).
        let known = Set(Mirror(reflecting: defaults).children.compactMap(\.label))
        return try layered(type, file: file, over: defaults, unreadable: "cannot read file", invalid: "not a valid \(kind) config",
                           known: known)
    }

    /// `file`'s JSON object over `defaults`; errors name the file, say `unreadable` when it cannot be
    /// read, and prefix the rest with `invalid`. Keys outside `known` (when given) are refused.
    private static func layered<C: Codable>(_ type: C.Type, file: String, over defaults: C, unreadable: String, invalid: String,
                                            known: Set<String>? = nil) throws -> C {
        func fail(_ problem: String) -> TrainingError { .badRun(path: file, problem: "\(invalid): \(problem)") }
        guard let data = FileManager.default.contents(atPath: file) else { throw TrainingError.badRun(path: file, problem: unreadable) }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw fail("expected a JSON object") }
        if let known, let problem = JSONLayers.unknownKey(in: object, known: known) { throw fail(problem) }
        do { return try JSONLayers.decode(type, over: defaults, layers: [object]) } catch { throw fail("\(DecodingProblem(error))") }
    }

    /// A new run starts in a folder without checkpoints: continuing one is `--resume`'s job.
    public func requireNoCheckpoints() throws {
        guard checkpoints().isEmpty else { throw TrainingError.hasCheckpoints(path: path) }
    }

    /// Demonstrations as `srppo score` input ({"source","prompt_ids","response_ids"} per line),
    /// written atomically to `name` in the folder: the held-out split, whose mean negative log-prob
    /// per response token is the eval loss.
    public func writeScoreInput(_ examples: [TokenizedExample], name: String) throws {
        var text = ""
        for example in examples {
            let object: [String: Any] = ["source": example.source, "prompt_ids": example.tokens.prompt.map(Int.init),
                                         "response_ids": example.tokens.response.map(Int.init)]
            text += String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/" + name), options: .atomic)
    }

    /// The saved configuration over `defaults` (`JSONLayers`): a run saved before a setting existed
    /// resumes with that setting's default, which keeps the behaviour the run was started with.
    public func loadConfig<C: Codable>(_ type: C.Type, over defaults: C, name: String = "run-config.json") throws -> C {
        try Self.layered(type, file: path + "/" + name, over: defaults, unreadable: "missing: is this a run folder?",
                         invalid: "cannot be read")
    }

    /// Appends one metrics record.
    public func log(_ record: [String: Any]) throws {
        try append(JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// Appends one metrics record, encoded (e.g. `PPOStepMetrics`).
    public func log<Record: Encodable>(_ record: Record) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try append(encoder.encode(record))
    }

    private func append(_ record: Data) throws {
        if metrics == nil {
            if !FileManager.default.fileExists(atPath: metricsPath) {
                guard FileManager.default.createFile(atPath: metricsPath, contents: nil) else {
                    throw TrainingError.badRun(path: metricsPath, problem: "cannot create the metrics file")
                }
            }
            guard let handle = FileHandle(forWritingAtPath: metricsPath) else {
                throw TrainingError.badRun(path: metricsPath, problem: "cannot open the metrics file for writing")
            }
            handle.seekToEndOfFile()
            metrics = handle
        }
        var line = record
        line.append(0x0A)
        metrics?.write(line)
    }

    /// Drops metrics records written after `step` (a resumed run repeats those steps).
    public func truncateMetrics(after step: Int) throws {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return }
        let kept = data.split(separator: 0x0A).filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let s = object["step"] as? Int else { return false }
            return s <= step
        }
        var out = Data()
        for line in kept { out.append(contentsOf: line); out.append(0x0A) }
        try AtomicFile.write(out, to: metricsPath)
    }

    /// Reads all metrics records.
    public func readMetrics() -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return [] }
        return data.split(separator: 0x0A).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
    }

    // MARK: Checkpoints

    /// A trainer's checkpoint: `policy` in Hugging Face layout at its root (what the run is for, with
    /// adapters merged) with `extraFiles` beside it (tokenizer files), and training-state/ holding
    /// trainer.json (`state`) and what `saveState` writes there.
    public func writeTrainingCheckpoint<State: Encodable>(step: Int, keep: Int, policy: LlamaModel, extraFiles: (String) throws -> Void,
                                                          state: State, saveState: (_ stateFolder: String) throws -> Void) throws {
        try writeCheckpoint(step: step, keep: keep) { folder in
            try HuggingFaceExport.save(policy, to: folder)
            try extraFiles(folder)
            let stateFolder = folder + "/training-state"
            try FileManager.default.createDirectory(atPath: stateFolder, withIntermediateDirectories: true)
            try saveState(stateFolder)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try AtomicFile.write(encoder.encode(state), to: stateFolder + "/trainer.json")
        }
    }

    /// The newest checkpoint's folder, its training-state/ and the trainer state saved there (nil:
    /// the run has no checkpoint yet).
    public func newestTrainingState<State: Decodable>(_ type: State.Type) throws -> (checkpoint: String, stateFolder: String, state: State)? {
        guard let latest = checkpoints().last else { return nil }
        let stateFolder = latest.path + "/training-state"
        guard let data = FileManager.default.contents(atPath: stateFolder + "/trainer.json") else {
            throw TrainingError.badRun(path: stateFolder + "/trainer.json", problem: "missing")
        }
        return (latest.path, stateFolder, try JSONDecoder().decode(State.self, from: data))
    }

    /// Writes a checkpoint: `body` fills a temporary folder, which is then renamed to
    /// checkpoints/step-NNNNNN, so a crash leaves either the previous checkpoints or the complete new
    /// one. Keeps the newest `keep` checkpoints. Returns the checkpoint's path.
    @discardableResult
    public func writeCheckpoint(step: Int, keep: Int, _ body: (String) throws -> Void) throws -> String {
        let final = checkpointsPath + "/" + Self.checkpointName(step)
        let temp = checkpointsPath + "/.tmp-" + Self.checkpointName(step) + "-\(getpid())"
        // Leftovers of a writer that was killed mid-checkpoint (one trainer owns a run folder).
        for name in (try? FileManager.default.contentsOfDirectory(atPath: checkpointsPath)) ?? [] where name.hasPrefix(".tmp-") {
            try? FileManager.default.removeItem(atPath: checkpointsPath + "/" + name)
        }
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        do {
            try body(temp)
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
        try? FileManager.default.removeItem(atPath: final)
        try SystemCall.retrying("rename(\(temp), \(final))") { rename(temp, final) }
        let dir = open(checkpointsPath, O_RDONLY | O_DIRECTORY)
        if dir >= 0 { fsync(dir); close(dir) }
        let all = checkpoints()
        for old in all.dropLast(max(keep, 1)) { try? FileManager.default.removeItem(atPath: old.path) }
        return final
    }

    /// Writes a model into <run>/`name` (a temporary folder renamed into place): by default the
    /// run's final model, model/.
    public func writeModel(named name: String = "model", _ body: (String) throws -> Void) throws {
        let final = path + "/" + name, temp = path + "/.tmp-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: temp)
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        do { try body(temp) } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
        try? FileManager.default.removeItem(atPath: final)
        try SystemCall.retrying("rename(\(temp), \(final))") { rename(temp, final) }
    }

    /// Complete checkpoints, oldest first.
    public func checkpoints() -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsPath)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            return (step, checkpointsPath + "/" + name)
        }.sorted { $0.0 < $1.0 }
    }

    /// The folder of the policy a PPO run saves after `step` (`--save-policy-at`).
    public static func policyName(step: Int) -> String { "policy-step-\(step)" }

    public static func checkpointName(_ step: Int) -> String {
        "step-" + String(repeating: "0", count: max(0, 6 - String(step).count)) + String(step)
    }
}

/// Prints a progress line to stderr, overwriting itself on a terminal and once per call otherwise.
public struct ProgressLine {
    private let isTerminal = isatty(2) != 0
    public init() {}

    public func show(_ text: String) {
        FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    public func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// "1h02m", "4m05s", "12s".
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h" + String(format: "%02dm", (s % 3600) / 60) }
        if s >= 60 { return "\(s / 60)m" + String(format: "%02ds", s % 60) }
        return "\(s)s"
    }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case badRun(path: String, problem: String)
    case resumeMismatch(String)
    /// A new run in a folder that has checkpoints.
    case hasCheckpoints(path: String)
    /// A setting the trainer cannot honour.
    case badConfig(String)

    public var description: String {
        switch self {
        case let .badConfig(problem): return "invalid setting: \(problem)"
        case let .badRun(path, problem): return "\(path): \(problem)"
        case let .resumeMismatch(problem): return "cannot resume: \(problem)"
        case let .hasCheckpoints(path): return "\(path) already has checkpoints: use --resume to continue it, or another --out"
        }
    }
}
