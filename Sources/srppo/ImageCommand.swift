import ArgumentParser
import Dispatch
import Foundation
import ModelFiles
import SystemSupport
import Compute
import Transformer
import WeightImage

/// `srppo image …`: frozen weights in sealed shared memory, handed out by file descriptor.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Build, serve and attach weight images (frozen weights in sealed shared memory).",
        discussion: """
        A weight image is a model's parameters in the engine's layout in one sealed memfd, with a JSON \
        manifest and a SHA-256. A server hands it out over a Unix socket (docs/weight-image-protocol.md); \
        each client maps the same physical memory, read-only or copy-on-write.

        Example:
          srppo image serve --model pt=PT.gguf --model sft=SFT/ --socket /tmp/weights.sock &
          srppo image attach --socket /tmp/weights.sock --name sft
        """,
        subcommands: [Build.self, Serve.self, Attach.self, List.self, HugePagesInfo.self]
    )
}

extension HugePagePolicy: ExpressibleByArgument {}
extension AttachMode: ExpressibleByArgument {}
extension WeightDType: ExpressibleByArgument {}

extension ImageCommand {
    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a weight image from a checkpoint; print its manifest summary and hash.",
            discussion: """
            Loads the model, writes its parameters into a sealed memfd and hashes them. Building is \
            deterministic: the same checkpoint and --dtype give the same sha256. With --out the image is \
            also saved as a file that 'image serve' starts from without converting the checkpoint again. \
            A bf16 image holds the matrices packed to bf16 and the norms in fp32 (about half the bytes); \
            models attached to it score exactly like `srppo score --dtype bf16`, and cannot generate.

            Examples:
              srppo image build --model SmolLM2.gguf --out smollm2.srppo-image
              srppo image build --model SmolLM2.gguf --dtype bf16 --out smollm2-bf16.srppo-image
            """
        )

        @Option(help: "Model: a GGUF file, a safetensors file, a Hugging Face folder or an image file.")
        var model: String

        @Option(help: "Image name (default: the file name without its extension).")
        var name: String?

        @Option(help: "Also save the image to this file.")
        var out: String?

        @Option(help: "Huge pages: off, try (fall back to normal pages) or require.")
        var hugepages: HugePagePolicy = .try

        @Option(help: "f32, or bf16 (packed bf16 matrices: half the memory, models on it score in bf16 only). Default: f32, image files as they are.")
        var dtype: WeightDType?

        @Flag(help: "Print the whole manifest (tensor table included) instead of a summary.")
        var manifest = false

        func validate() throws {
            if let name, let problem = WeightImage.nameProblem(name) { throw ValidationError(problem) }
        }

        func run() throws {
            let name = self.name ?? WeightImage.defaultName(forModelAt: model)
            let (image, seconds) = try CLI.orExit { try buildImage(name: name, path: model, dtype: dtype, hugePages: hugepages) }
            var report = imageReport(image, seconds: seconds)
            if let out {
                try CLI.orExit { try WeightImageFile.write(image, to: out) }
                report["out"] = out
            }
            if manifest { report["manifest"] = jsonObject(image.manifest) }
            try JSONLines.Writer(path: nil).write(report)
        }
    }

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve weight images by file descriptor on a Unix socket until SIGINT or SIGTERM.",
            discussion: """
            Builds one image per --model (give each a name with NAME=PATH), binds the socket and answers \
            'list' and 'attach' requests (docs/weight-image-protocol.md). Prints one JSON line per image, \
            then {"event":"listening",...}; logs each attach on stderr.

            Example:
              srppo image serve --model pt=PT.gguf --model sft=SFT/ --socket /tmp/weights.sock --hugepages try
            """
        )

        @Option(name: .customLong("model"), help: "[NAME=]PATH of a checkpoint or image file; repeat for several.")
        var models: [String]

        @Option(help: "Path of the Unix socket to listen on.")
        var socket: String

        @Option(help: "Huge pages: off, try (fall back to normal pages) or require.")
        var hugepages: HugePagePolicy = .try

        @Option(help: "f32, or bf16 (packed bf16 matrices: half the memory, models on it score in bf16 only). Default: f32, image files as they are.")
        var dtype: WeightDType?

        @Option(name: .customLong("allow-uid"), help: "Only these user ids (and the server's own) may list or attach; repeatable.")
        var allowedUIDs: [UInt32] = []

        func validate() throws {
            guard !models.isEmpty else { throw ValidationError("give at least one --model") }
            let names = try models.map { try Self.split($0).name }
            for name in names { if let problem = WeightImage.nameProblem(name) { throw ValidationError(problem) } }
            guard Set(names).count == names.count else { throw ValidationError("image names must differ: \(names)") }
        }

        static func split(_ argument: String) throws -> (name: String, path: String) {
            if let equals = argument.firstIndex(of: "="), !FileManager.default.fileExists(atPath: argument) {
                return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
            }
            return (WeightImage.defaultName(forModelAt: argument), argument)
        }

        func run() throws {
            let out = try JSONLines.Writer(path: nil)
            var images: [WeightImage] = []
            for argument in models {
                let (name, path) = try Self.split(argument)
                let (image, seconds) = try CLI.orExit { try buildImage(name: name, path: path, dtype: dtype, hugePages: hugepages) }
                var report = imageReport(image, seconds: seconds)
                report["event"] = "image"
                try out.write(report)
                images.append(image)
            }
            let listening = try CLI.orExit { try UnixSocket.listen(path: socket) }
            defer {
                close(listening)
                unlink(socket)
            }
            let allowed: Set<UInt32> = Set(allowedUIDs + [getuid()])
            var authorize: WeightImageServer.Authorization?
            if !allowedUIDs.isEmpty {
                authorize = { (peer: PeerCredentials, _: String?) -> Bool in allowed.contains(peer.uid) }
            }
            let server = try CLI.orExit {
                try WeightImageServer(listeningSocket: listening, images: images, authorize: authorize,
                                      log: { FileHandle.standardError.write(Data("srppo image serve: \($0)\n".utf8)) })
            }
            try CLI.orExit { try SignalThread.install([SIGINT, SIGTERM], threadName: "srppo-signals") { _ in server.stop() } }
            try out.write(["event": "listening", "socket": socket, "pid": Int(getpid()), "images": images.map(\.name)])
            try CLI.orExit { try server.run() }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the images a server offers, one JSON line each.",
            discussion: """
            Example:
              srppo image list --socket /tmp/weights.sock
            """
        )

        @Option(help: "Path of the server's Unix socket.")
        var socket: String

        func run() throws {
            let images = try CLI.orExit { try WeightImageClient(socketPath: socket).list() }
            let out = try JSONLines.Writer(path: nil)
            for image in images {
                var line = jsonObject(image) as! [String: Any]
                line["backing_summary"] = image.backing.summary
                try out.write(line)
            }
        }
    }

    struct HugePagesInfo: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hugepages",
            abstract: "Show the huge page pools, libhugetlbfs and the shared-memory THP mode.",
            discussion: """
            Example:
              srppo image hugepages
            """
        )

        func run() throws {
            try JSONLines.Writer(path: nil).write([
                "libhugetlbfs": HugePages.libhugetlbfsAvailable,
                "default_page_size": HugePages.defaultPageSize.map { $0 as Any } ?? NSNull(),
                "pools": HugePages.pools().map(jsonObject),
                "shmem_thp": HugePages.shmemTransparentHugePageMode.map { $0 as Any } ?? NSNull(),
            ])
        }
    }
}
