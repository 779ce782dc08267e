import Daemon
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Tokenizer
import WireProtocol

/// srppod's request path up to the scheduler: NIO's HTTP/1.1 decoder (the parser the daemon runs),
/// then each complete request's body through the decoding and validation of its endpoint, with the
/// daemon's default limits. With SRPPO_SMOLLM2 set, text items and tokenize requests go through
/// SmolLM2's tokenizer too.
enum HTTPRequestTarget {
    static let limits: Limits = {
        var limits = DaemonConfiguration(ptPath: "", sftPath: "").limits
        limits.maxSequenceTokens = 8192
        return limits
    }()

    nonisolated(unsafe) static var loadedCodec = false
    nonisolated(unsafe) static var cachedCodec: TextCodec?

    static var codec: TextCodec? {
        if !loadedCodec {
            loadedCodec = true
            if let path = ProcessInfo.processInfo.environment["SRPPO_SMOLLM2"] {
                let tokenizer = try! BPETokenizer(modelPath: path)
                cachedCodec = TextCodec(encoder: try! PromptResponseEncoder(tokenizer: tokenizer), source: path, modelEOS: [2])
            }
        }
        return cachedCodec
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        guard (try? channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))) != nil else {
            fatalError("cannot set up the HTTP decoder")
        }
        var head: HTTPRequestHead?
        var body = ByteBuffer()
        do {
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        } catch {
            return  // a malformed request: the daemon answers 400 and closes
        }
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case let .head(h):
                head = h
                body.clear()
            case var .body(chunk):
                guard body.readableBytes + chunk.readableBytes <= limits.maxBodyBytes else { return }
                body.writeBuffer(&chunk)
            case .end:
                if let head { route(head.uri, Data(body.readableBytesView)) }
            }
        }
    }

    static func route(_ path: String, _ body: Data) {
        let validator = RequestValidator(limits: limits, vocabSize: 49152, eosTokenIDs: [2], text: codec)
        switch path {
        case WireProtocol.Path.score: _ = try? validator.validateScore(body)
        case WireProtocol.Path.getReward: _ = try? validator.validateRemoteReward(body)
        case WireProtocol.Path.tokenize:
            guard let request: TokenizeRequest = try? RequestValidator.decode(body, maxDepth: limits.maxJSONDepth) else { return }
            _ = try? codec?.tokenize(request)
        case WireProtocol.Path.detokenize:
            guard let request: DetokenizeRequest = try? RequestValidator.decode(body, maxDepth: limits.maxJSONDepth) else { return }
            _ = try? codec?.detokenize(request)
        default: break
        }
    }
}
