import CFuzz
import CLinux
import Foundation
import ModelFiles
import Training
import Transformer
import WeightImage

// Fuzz targets for every parser that reads outside input. Each target gets arbitrary bytes and
// must either succeed or throw a typed error; a crash, hang or sanitizer report is a bug.
//
//   srppo-fuzz <target> [libFuzzer flags] [corpus dirs]   (built with -sanitize=fuzzer: fuzzes)
//   srppo-fuzz <target> <files or dirs>…                  (ordinary build: replays each input once)
//
// scripts/fuzz.sh builds and runs them; Fuzz/corpus/<target> holds seeds, Fuzz/regressions/<target>
// every input that once crashed.

/// Parsers that read files get the bytes through a memfd, named by its /proc path.
func withFile<T>(_ bytes: UnsafeRawBufferPointer, _ body: (String) throws -> T) rethrows -> T {
    let fd = srppo_memfd_create("fuzz-input", srppo_mfd_cloexec)
    precondition(fd >= 0, "memfd_create failed")
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let n = write(fd, bytes.baseAddress! + written, bytes.count - written)
        precondition(n > 0, "write to memfd failed")
        written += n
    }
    return try body("/proc/self/fd/\(fd)")
}

/// A tiny model whose image the protocol and manifest targets serve and check against.
let tinyConfig = LlamaConfig(vocabSize: 32, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKVHeads: 1,
                             maxPositions: 64, bosTokenId: 1, eosTokenIds: [2])

final class ImageFixture: @unchecked Sendable {
    let image: WeightImage
    let socketPath: String
    let server: WeightImageServer

    init() throws {
        image = try WeightImage(name: "tiny", model: LlamaModel(config: tinyConfig), hugePages: .off)
        socketPath = NSTemporaryDirectory() + "srppo-fuzz-\(getpid()).sock"
        server = try WeightImageServer(listeningSocket: try UnixSocket.listen(path: socketPath), images: [image])
        server.start()
    }
}

nonisolated(unsafe) var fixture: ImageFixture?

func imageFixture() -> ImageFixture {
    if fixture == nil { fixture = try! ImageFixture() }
    return fixture!
}

let targets: [String: (UnsafeRawBufferPointer) -> Void] = [
    // GGUF header, metadata, tensor table, dequantization and the LLaMA config read from it.
    "gguf": { bytes in
        withFile(bytes) { path in
            guard let file = try? GGUFFile(path: path) else { return }
            for info in file.tensors.prefix(8) where (info.elementCount ?? .max) <= 1 << 20 { _ = try? file.dequantize(info) }
            _ = try? LlamaConfig(gguf: file)
        }
    },
    // safetensors header (JSON), offsets and values.
    "safetensors": { bytes in
        withFile(bytes) { path in
            guard let file = try? SafetensorsFile(path: path) else { return }
            for name in file.tensorNames.prefix(8) where file.tensors[name]!.elementCount <= 1 << 20 { _ = try? file.read(file.tensors[name]!) }
        }
    },
    // Hugging Face config.json.
    "hf-config": { bytes in
        _ = try? LlamaConfig(huggingFaceJSON: Data(bytes), source: "fuzz")
    },
    // JSONL demonstration and prompt files (token-id records: the text path needs a tokenizer).
    "jsonl-data": { bytes in
        withFile(bytes) { path in
            let limits = DataLoader.Limits(vocabularySize: 100, maxLength: 64)
            _ = try? DataLoader.demonstrations(path: path, encoder: nil, limits: limits)
            _ = try? DataLoader.prompts(path: path, encoder: nil, limits: limits)
        }
    },
    // The weight-image server's request handling: the input goes to a real server over a real
    // connection, as a hostile client would send it.
    "image-protocol": { bytes in
        let f = imageFixture()
        guard let socket = try? UnixSocket.connect(path: f.socketPath) else { fatalError("cannot connect to the fixture server") }
        defer { close(socket) }
        _ = send(socket, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        shutdown(socket, Int32(SHUT_WR))
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while recv(socket, &buffer, buffer.count, 0) > 0 {}
    },
    // srppod's HTTP requests: NIO's HTTP/1.1 decoder, then each endpoint's body decoding and checks.
    "http-request": HTTPRequestTarget.run,
    // A manifest received from a server, checked against a real image descriptor before mapping.
    "image-manifest": { bytes in
        let f = imageFixture()
        guard let manifest = try? JSONDecoder().decode(WeightImageManifest.self, from: Data(bytes)) else { return }
        if let mapped = try? MappedWeightImage.map(fd: f.image.fd, manifest: manifest, mode: .shared) {
            _ = mapped.makeModel()
        }
    },
]

nonisolated(unsafe) var selected: (UnsafeRawBufferPointer) -> Void = { _ in }

@_cdecl("srppo_fuzz_one_input")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selected(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

let arguments = CommandLine.arguments
// Fuzz/make_seeds.py takes the image-manifest seeds from the fixture itself: its manifest, and the
// manifest a bf16 image of the same model would have.
if arguments.count == 4 && arguments[1] == "--write-manifest-seed", let dtype = WeightDType(rawValue: arguments[3]) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let fixture = imageFixture().image.manifest
    let manifest = WeightImageManifest(name: fixture.name, config: fixture.config, dtype: dtype, sha256: fixture.sha256)
    try! encoder.encode(manifest).write(to: URL(fileURLWithPath: arguments[2]))
    exit(0)
}
guard arguments.count >= 2, let target = targets[arguments[1]] else {
    FileHandle.standardError.write(Data("usage: srppo-fuzz <\(targets.keys.sorted().joined(separator: "|"))> [libFuzzer flags] [corpus…]\n".utf8))
    exit(2)
}
selected = target

if srppo_fuzz_driver_available() != 0 {
    var cArguments = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) }
    let code = srppo_fuzz_run_driver(Int32(cArguments.count), &cArguments) { data, size in fuzzOneInput(data, size) }
    exit(code)
}

// Replay mode: every file named, or inside a named folder, once.
var replayed = 0
for path in arguments.dropFirst(2) {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        FileHandle.standardError.write(Data("srppo-fuzz: \(path): no such file or directory\n".utf8))
        exit(1)
    }
    let files = isDirectory.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
        : [path]
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { continue }
        data.withUnsafeBytes { target($0) }
        replayed += 1
    }
}
print("srppo-fuzz \(arguments[1]): replayed \(replayed) inputs without a crash")
