import ArgumentParser
import Dispatch
import Foundation
import ModelFiles
import Compute
import WeightImage

extension ImageCommand {
    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach an image from a server; report backing and timings, optionally score with it.",
            discussion: """
            Prints one JSON line: the image's name, hash, backing, the attach mode and how long the hand-out \
            (connect → reply and descriptor received) and the attach (descriptor received → manifest \
            decoded and checked, memory mapped, model ready to compute log-probs) took. With --score, scores JSONL pairs like 'srppo score' (stdin unless \
            --input) and prints the report line on stderr instead. With --hold, keeps the mapping until \
            standard input closes, for inspecting /proc/PID/smaps_rollup.

            Example:
              echo '{"prompt_ids":[1,2,3],"response_ids":[4,5]}' | srppo image attach --socket /tmp/weights.sock --name sft --score
            """
        )

        @Option(help: "Path of the server's Unix socket.")
        var socket: String

        @Option(help: "Name of the image.")
        var name: String

        @Option(help: "shared: read-only, one physical copy for all; private: writable copy-on-write.")
        var mode: AttachMode = .shared

        @Option(help: "Refuse the image unless its content hash is this (64 hex digits).")
        var sha256: String?

        @Flag(help: "Re-hash the mapped data and compare with the manifest.")
        var verify = false

        @Flag(help: "Fault every page in at attach time (never breaks copy-on-write).")
        var populate = false

        @Flag(help: "Score JSONL pairs {\"prompt_ids\":[…],\"response_ids\":[…]} with the attached weights.")
        var score = false

        @Option(help: "Input JSONL file for --score (default: standard input).")
        var input: String?

        @Option(help: "Output JSONL file for --score (default: standard output).")
        var output: String?

        @Option(help: "Sequences scored together in one forward pass.")
        var batchSize: Int = 8

        @OptionGroup var threading: ThreadOptions

        @Flag(help: "Keep the mapping until standard input closes, after printing {\"event\":\"holding\",…}.")
        var hold = false

        @Flag(help: "Include the whole manifest in the report.")
        var manifest = false

        func validate() throws {
            if hold && score && input == nil {
                throw ValidationError("--hold waits for standard input to close: give --score an --input file")
            }
            if input != nil && !score { throw ValidationError("--input is read only with --score") }
        }

        func run() throws {
            threading.apply()
            let start = DispatchTime.now()
            let received = try CLI.orExit {
                try WeightImageClient(socketPath: socket).fetch(name: name, expectedSHA256: sha256)
            }
            let mapped = try CLI.orExit { try received.map(mode: mode, verifyHash: verify, populate: populate) }
            let model = mapped.makeModel()
            let attachSeconds = elapsed(since: received.receivedAt)
            let handoutSeconds = seconds(from: start, to: received.receivedAt)

            var report: [String: Any] = [
                "event": "attached", "name": received.manifest.name, "sha256": received.manifest.sha256,
                "dtype": received.manifest.dtype.rawValue, "data_bytes": received.manifest.dataBytes,
                "backing": jsonObject(received.backing), "backing_summary": received.backing.summary,
                "mode": mode.rawValue, "verified": verify, "populated": populate, "pid": Int(getpid()),
                "handout_ms": handoutSeconds * 1e3, "attach_ms": attachSeconds * 1e3,
            ]
            if manifest { report["manifest"] = jsonObject(received.manifest) }
            // Score lines own stdout when scoring to it; the report then goes to stderr.
            let reports = JSONLines.Writer(handle: score && output == nil ? .standardError : .standardOutput)
            try reports.write(report)
            if score {
                try ScoreCommand.score(with: model, input: input, output: output, batchSize: batchSize)
            }
            if hold {
                try reports.write(["event": "holding", "pid": Int(getpid())])
                _ = FileHandle.standardInput.readDataToEndOfFile()
            }
            withExtendedLifetime(mapped) {}
        }
    }
}
