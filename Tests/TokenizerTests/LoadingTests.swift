import Foundation
import ModelFiles
import TestSupport
import Tokenizer
import XCTest

/// Loading from Hugging Face files and GGUF, writing Hugging Face files, and typed errors for bad data.
final class LoadingTests: XCTestCase {
    let sampleTexts = ["hello world", "aaaaa abc", "hello<|end|>abc", "  \n\n x 123", "日本語 😀", ""]

    func testHuggingFaceFilesRoundTrip() throws {
        for kind in PreTokenizerKind.allCases {
            var definition = tinyDefinition(preTokenizer: kind, ignoresMerges: kind == .llama3, missingByteToken: kind == .gpt2)
            definition.normalizesToNFC = kind == .qwen2
            definition.bosTokenId = 5
            definition.addsBOS = kind == .llama3
            definition.padTokenId = 270
            definition.chatTemplate = KnownChatTemplates.chatML
            definition.maxLength = 2048
            let original = try BPETokenizer(definition: definition)
            let folder = try temporaryFolder(self)
            try original.writeHuggingFaceFiles(to: folder)
            let reloaded = try BPETokenizer(huggingFaceFolder: folder)

            let back = reloaded.definition
            XCTAssertEqual(back.tokens, definition.tokens, "\(kind)")
            XCTAssertEqual(back.merges, definition.merges)
            XCTAssertEqual(back.addedTokens, definition.addedTokens)
            XCTAssertEqual(back.preTokenizer, kind)
            XCTAssertEqual(back.normalizesToNFC, definition.normalizesToNFC)
            XCTAssertEqual(back.ignoresMerges, definition.ignoresMerges)
            XCTAssertEqual(back.missingByteTokenId, definition.missingByteTokenId)
            XCTAssertEqual([back.bosTokenId, back.eosTokenId, back.padTokenId], [5, 270, 270])
            XCTAssertEqual(back.addsBOS, definition.addsBOS)
            XCTAssertEqual(back.chatTemplate, KnownChatTemplates.chatML)
            XCTAssertEqual(back.maxLength, 2048)
            for text in sampleTexts {
                XCTAssertEqual(reloaded.encode(text), original.encode(text), "\(kind): \(text)")
            }
        }
    }

    func testMalformedDefinitionsGiveTypedErrors() {
        var badMerge = tinyDefinition()
        badMerge.merges.append(.init(left: "zz", right: "q"))
        XCTAssertEqual(tokenizerError { _ = try BPETokenizer(definition: badMerge) },
                       .badMerge(source: "tiny", index: 13, merge: "zz q", problem: "'zz' is not in the vocabulary"))
        var unjoinable = tinyDefinition()
        unjoinable.merges.append(.init(left: "x", right: "y"))
        XCTAssertEqual(tokenizerError { _ = try BPETokenizer(definition: unjoinable) },
                       .badMerge(source: "tiny", index: 13, merge: "x y", problem: "the joined token 'xy' is not in the vocabulary"))
        var badId = tinyDefinition()
        badId.eosTokenId = 100_000
        XCTAssertEqual(tokenizerError { _ = try BPETokenizer(definition: badId) },
                       .badField(source: "tiny", field: "eos token id", problem: "100000 is outside the vocabulary of 272 tokens"))
        var badAdded = tinyDefinition()
        badAdded.addedTokens.append(.init(id: 3, content: "", special: false))
        XCTAssertEqual(tokenizerError { _ = try BPETokenizer(definition: badAdded) },
                       .badToken(source: "tiny", id: 3, problem: "added token has empty content"))
    }

    func testMalformedTokenizerJSONGivesTypedErrors() throws {
        let folder = try temporaryFolder(self)
        let path = folder + "/tokenizer.json"
        func load(_ json: String) -> TokenizerError? {
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(json.utf8)))
            return tokenizerError { _ = try BPETokenizer(huggingFaceFolder: folder) }
        }
        XCTAssertEqual(load("{not json"), .cannotRead(path: path, reason: "not valid JSON"))
        XCTAssertEqual(load("{}"), .missingField(source: path, field: "model"))
        XCTAssertEqual(load(#"{"model":{"type":"WordPiece"}}"#), .unsupportedModel(source: path, model: "WordPiece"))
        let model = #""model":{"type":"BPE","vocab":{"a":0,"c":2},"merges":[]},"decoder":{"type":"ByteLevel"},"added_tokens":[]"#
        XCTAssertEqual(load(#"{"# + model + #","pre_tokenizer":{"type":"Whitespace"}}"#),
                       .unknownPreTokenizer(source: path, name: "Whitespace"))
        let gpt2 = #","pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false}"#
        XCTAssertEqual(load(#"{"# + model + gpt2 + "}"), .badToken(source: path, id: 1, problem: "no token has this id (ids must be contiguous)"))
        XCTAssertEqual(load(#"{"model":{"type":"BPE","vocab":{"a":"x"},"merges":[]},"decoder":{"type":"ByteLevel"},"added_tokens":[]"# + gpt2 + "}"),
                       .badField(source: path, field: "model.vocab.a", problem: "expected a non-negative integer id"))
        XCTAssertEqual(load(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b c"]},"decoder":{"type":"ByteLevel"},"added_tokens":[]"# + gpt2 + "}"),
                       .badMerge(source: path, index: 0, merge: "a b c", problem: "expected two tokens separated by one space"))
        XCTAssertEqual(load(#"{"# + model + gpt2 + #","normalizer":{"type":"Lowercase"}}"#),
                       .unsupported(source: path, feature: "normalizer Lowercase (only NFC or none)"))
        XCTAssertEqual(tokenizerError { _ = try BPETokenizer(modelPath: folder + "/missing.gguf") },
                       .cannotRead(path: folder + "/missing.gguf", reason: "no such file or directory"))
    }

    func testRealModelEncodesAndDecodesLikeHuggingFace() throws {
        guard let path = smolLM2Path() else { throw XCTSkip("SmolLM2 model not downloaded (run scripts/setup.sh)") }
        let tokenizer = try BPETokenizer(gguf: GGUFFile(path: path))
        XCTAssertEqual(tokenizer.vocabularySize, 49152)
        XCTAssertEqual(tokenizer.preTokenizer, .smollm)
        XCTAssertEqual([tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.padTokenId, tokenizer.endOfTurnTokenId], [1, 2, 2, 2])
        // Ids from tokenizers 0.23 on the tokenizer.json rebuilt from this file (Tests/python/hf_reference.py).
        XCTAssertEqual(tokenizer.encode("Hello world 2024!"), [19556, 905, 216, 34, 32, 34, 36, 17])
        XCTAssertEqual(tokenizer.encode("I'm here<|im_end|>x"), [57, 5248, 1535, 2, 104])
        XCTAssertEqual(tokenizer.encode("  \n\n  hi"), [256, 8866, 15876])
        XCTAssertEqual(tokenizer.decode([1, 49151, 999_999]), "<|im_start|>ectable")
        for text in ["Ünïcödé テキスト 😀👨‍👩‍👧‍👦 ١٢٣ 𝐀", "def f(x):\n\treturn x  # ok\n", "<|im_start|>user\nHi<|im_end|>\n"] {
            let ids = tokenizer.encode(text)
            XCTAssertEqual(tokenizer.decode(ids), text)
            var stream = tokenizer.streamingDecoder()
            var streamed = ""
            for id in ids {
                streamed += stream.append(id)
                XCTAssertTrue(text.unicodeScalars.starts(with: streamed.unicodeScalars), streamed.debugDescription)
            }
            XCTAssertEqual(streamed + stream.finish(), text)
        }
        let template = try ChatTemplate(tokenizer: tokenizer)
        XCTAssertEqual(template.format, .chatML(defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
        let encoder = try PromptResponseEncoder(tokenizer: tokenizer)
        XCTAssertEqual(try encoder.encodeResponse("Hello!", chat: true), tokenizer.encode("Hello!") + [2])
        XCTAssertEqual(try encoder.encodePrompt(messages: [ChatMessage(role: "user", content: "Hi")]),
                       tokenizer.encode(template.render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)))
    }
}
