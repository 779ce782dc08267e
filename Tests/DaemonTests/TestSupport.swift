import Daemon
import Foundation
import Compute
import TestSupport
import Transformer
import XCTest

/// A tiny LLaMA with seeded random weights (vocabulary 67, EOS 2), written as a Hugging Face folder so
/// that the daemon loads it the way it loads a real checkpoint.
enum TinyCheckpoint {
    static let config = LlamaConfig(vocabSize: 67, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                    maxPositions: 128, tieWordEmbeddings: true, bosTokenId: 1, eosTokenIds: [2])

    static func model(seed: UInt64) -> LlamaModel {
        TinyModels.model(config, seed: seed)
    }

    /// Writes the model of `seed` to `folder` and returns the folder.
    @discardableResult
    static func write(seed: UInt64, to folder: String) throws -> String {
        try HuggingFaceExport.save(model(seed: seed), to: folder)
        return folder
    }
}

/// Random scoring requests over the tiny vocabulary; every third response ends with EOS.
func tinyRequests(count: Int, seed: UInt64) -> [(prompt: [Int32], response: [Int32])] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { i in
        let promptLength = 1 + Int(generator.next() % 12)
        let responseLength = Int(generator.next() % 10)
        let prompt = (0..<promptLength).map { _ in Int32(generator.next() % 67) }
        var response = (0..<responseLength).map { _ in Int32(3 + generator.next() % 64) }
        if i % 3 == 0 { response.append(2) }
        return (prompt, response)
    }
}

/// An srppod running in this process on sockets in `folder`, stopped when the test ends.
final class RunningDaemon {
    let daemon: ScoringDaemon
    let socket: String
    let imageSocket: String

    init(_ test: XCTestCase, folder: String, pt: String, sft: String, configure: (inout DaemonConfiguration) -> Void = { _ in }) throws {
        socket = folder + "/http.sock"
        imageSocket = folder + "/images.sock"
        var configuration = DaemonConfiguration(ptPath: pt, sftPath: sft)
        configuration.socketPath = socket
        configuration.imageSocketPath = imageSocket
        configuration.hugePages = .off
        configure(&configuration)
        daemon = ScoringDaemon(configuration: configuration, log: DaemonLog(destination: .stderr, minimum: .warning),
                               passed: PassedDescriptors())
        try daemon.listen()
        _ = try daemon.loadModels()
        test.addTeardownBlock { [daemon] in daemon.stop() }
    }
}
