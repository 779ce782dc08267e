import Dispatch
import Tokenizer
import XCTest

/// Encoding: merge order, added tokens, missing bytes, ignore_merges and the pre-tokenizer regexes.
/// Expected values come from Hugging Face `tokenizers` 0.23 on the same definitions and texts.
final class TokenizerTests: XCTestCase {
    func testMergesLowestRankFirstAndLeftmostOnTies() throws {
        let tokenizer = try BPETokenizer(definition: tinyDefinition())
        XCTAssertEqual(tokenizer.encode("hello world"), [259, 264])
        XCTAssertEqual(tokenizer.encode("aaa"), [265, 97])        // "aa" + "a": the leftmost pair merges first
        XCTAssertEqual(tokenizer.encode("aaaaa"), [266, 97])      // "aaaa" + "a"
        XCTAssertEqual(tokenizer.encode("abc"), [97, 267])        // "b c" (rank 11) before "a b" (rank 12)
        XCTAssertEqual(tokenizer.encode("ab"), [268])
        XCTAssertEqual(tokenizer.encode("hello  world"), [259, 32, 264])
        XCTAssertEqual(tokenizer.encode(""), [])
    }

    func testSpecialTokensInTextAreWholeTokens() throws {
        let tokenizer = try BPETokenizer(definition: tinyDefinition())
        XCTAssertEqual(tokenizer.encode("hello<|end|>abc"), [259, 270, 97, 267])
        XCTAssertEqual(tokenizer.encode("<|end|><|end|>"), [270, 270])
        XCTAssertEqual(tokenizer.encode("<|end|"), tokenizer.encode("<|") + tokenizer.encode("end|"))
    }

    func testAddedTokensMatchLeftmostThenLongest() {
        let matcher = AddedTokenMatcher([("<a>", 1), ("<a><b>", 2), ("a>", 3), ("<b>", 4)])
        var found: [String] = []
        let text = Array("x<a><b>y<a>a><b".utf8)
        text.withUnsafeBufferPointer { bytes in
            matcher.forEachSegment(of: bytes, token: { found.append("#\($0)") }) {
                found.append(String(decoding: $0, as: UTF8.self))
            }
        }
        XCTAssertEqual(found, ["x", "#2", "y", "#1", "#3", "<b"])
    }

    func testIgnoreMergesTakesWholeVocabularyPieces() throws {
        let tokenizer = try BPETokenizer(definition: tinyDefinition(ignoresMerges: true))
        XCTAssertEqual(tokenizer.encode("abc"), [269])
        XCTAssertEqual(tokenizer.encode("aaa"), [265, 97])
        XCTAssertEqual(tokenizer.encode("hello"), [259])
    }

    func testBytesWithoutATokenAreDroppedOrBecomeTheUnknownToken() throws {
        let dropped = try BPETokenizer(definition: tinyDefinition(droppingByte: 4))
        XCTAssertEqual(dropped.encode("a\u{4}b"), [96, 97])
        XCTAssertEqual(dropped.encode("\u{4}"), [])
        let unknown = try BPETokenizer(definition: tinyDefinition(droppingByte: 4, missingByteToken: true))
        XCTAssertEqual(unknown.encode("a\u{4}\u{4}b"), [96, 270, 270, 97])
        let fused = try BPETokenizer(definition: tinyDefinition(droppingByte: 4, missingByteToken: true, fusesMissingBytes: true))
        XCTAssertEqual(fused.encode("a\u{4}\u{4}b"), [96, 270, 97])
        XCTAssertEqual(fused.encode("\u{4}"), [270])
    }

    func testLongPiecesMergeLikeShortOnes() throws {
        let tokenizer = try BPETokenizer(definition: tinyDefinition())
        XCTAssertEqual(tokenizer.encode(String(repeating: "a", count: 4001)), Array(repeating: 266, count: 1000) + [97])
        XCTAssertEqual(tokenizer.encode(String(repeating: "ab", count: 3000)), Array(repeating: 268, count: 3000))
    }

    func testPreTokenizerPiecesMatchHuggingFaceRegexes() {
        let cases: [(String, [PreTokenizerKind: [String]])] = [
            ("I'm HERE, they'LL  go", [
                .gpt2: ["I", "'m", " HERE", ",", " they", "'", "LL", " ", " go"],
                .llama3: ["I", "'m", " HERE", ",", " they", "'LL", " ", " go"],
            ]),
            ("x  \n\n  y", [.gpt2: ["x", "  \n\n ", " y"], .llama3: ["x", "  \n\n", " ", " y"]]),
            ("a 123 4567", [
                .gpt2: ["a", " 123", " 4567"],
                .smollm: ["a", " ", "1", "2", "3", " ", "4", "5", "6", "7"],
                .llama3: ["a", " ", "123", " ", "456", "7"],
                .qwen2: ["a", " ", "1", "2", "3", " ", "4", "5", "6", "7"],
            ]),
            ("'ſ 'S 'll'd", [.gpt2: ["'", "ſ", " '", "S", " '", "ll", "'d"], .llama3: ["'ſ", " '", "S", " '", "ll", "'d"]]),
            ("(hello) \t\tworld\r\n\r\nok", [
                .gpt2: ["(", "hello", ")", " \t", "\t", "world", "\r\n\r", "\n", "ok"],
                .llama3: ["(hello", ")", " \t", "\tworld", "\r\n\r\n", "ok"],
            ]),
            ("\u{A0}\u{3000} 日本語 😀😀 ...", [.gpt2: ["\u{A0}\u{3000}", " 日本語", " 😀😀", " ..."], .qwen2: ["\u{A0}\u{3000}", " 日本語", " 😀😀", " ..."]]),
            (" ", [.gpt2: [" "], .smollm: [" "], .llama3: [" "], .qwen2: [" "]]),
        ]
        for (text, expected) in cases {
            for (kind, expectedPieces) in expected {
                XCTAssertEqual(pieces(of: text, kind), expectedPieces, "\(kind) on \(text.debugDescription)")
            }
        }
    }

    func testGGUFPreTokenizerNames() {
        XCTAssertEqual(PreTokenizerKind(ggufName: "smollm"), .smollm)
        XCTAssertEqual(PreTokenizerKind(ggufName: "llama-bpe"), .llama3)
        XCTAssertEqual(PreTokenizerKind(ggufName: "qwen2"), .qwen2)
        XCTAssertEqual(PreTokenizerKind(ggufName: "gpt-2"), .gpt2)
        XCTAssertNil(PreTokenizerKind(ggufName: "deepseek-llm"))
    }

    func testNFCNormalizationForQwen2() throws {
        var definition = tinyDefinition(preTokenizer: .qwen2)
        definition.normalizesToNFC = true
        let tokenizer = try BPETokenizer(definition: definition)
        XCTAssertEqual(tokenizer.encode("e\u{301}"), tokenizer.encode("\u{E9}"))
        XCTAssertEqual(tokenizer.encode("\u{212B}"), tokenizer.encode("\u{C5}"))     // Angstrom sign → Å
        XCTAssertNotEqual(try BPETokenizer(definition: tinyDefinition(preTokenizer: .qwen2)).encode("e\u{301}"), tokenizer.encode("\u{E9}"))
    }

    func testConcurrentEncodingGivesTheSameIds() throws {
        let tokenizer = try BPETokenizer(definition: tinyDefinition())
        let texts = (0..<64).map { "hello world \($0) aaaa<|end|>abc " + String(repeating: "ab", count: $0) }
        let expected = texts.map(tokenizer.encode)
        var results = [[Int32]](repeating: [], count: texts.count)
        results.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            DispatchQueue.concurrentPerform(iterations: texts.count) { base[$0] = tokenizer.encode(texts[$0]) }
        }
        XCTAssertEqual(results, expected)
    }
}
