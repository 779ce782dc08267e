import Foundation
import Tokenizer
import XCTest

/// A small byte-level BPE: the 256 byte tokens, then merges building "hello", " world", "aaaa", "bc",
/// "ab"; "abc" is a token no merge produces (for ignore_merges), "<|end|>" a special token and
/// "<unk>" an unknown token. The expected ids in the tests come from Hugging Face `tokenizers` 0.23
/// run on the same vocabulary and merges.
func tinyDefinition(preTokenizer: PreTokenizerKind = .gpt2, ignoresMerges: Bool = false, droppingByte: UInt8? = nil,
                    missingByteToken: Bool = false, fusesMissingBytes: Bool = false) -> TokenizerDefinition {
    let extra = ["he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "aa", "aaaa", "bc", "ab", "abc", "<|end|>", "<unk>"]
    var tokens = (0..<256).map { String(ByteLevel.characterOfByte[$0]) } + extra
    if let droppingByte { tokens.removeAll { $0 == String(ByteLevel.characterOfByte[Int(droppingByte)]) } }
    let merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"),
                  ("Ġwor", "ld"), ("a", "a"), ("aa", "aa"), ("b", "c"), ("a", "b")]
    let endId = tokens.firstIndex(of: "<|end|>")!, unknownId = tokens.firstIndex(of: "<unk>")!
    return TokenizerDefinition(
        source: "tiny", tokens: tokens, merges: merges.map { .init(left: $0.0, right: $0.1) },
        addedTokens: [.init(id: endId, content: "<|end|>", special: true)],
        preTokenizer: preTokenizer, normalizesToNFC: false, ignoresMerges: ignoresMerges,
        missingByteTokenId: missingByteToken ? unknownId : nil, fusesMissingBytes: fusesMissingBytes,
        bosTokenId: nil, eosTokenId: endId, padTokenId: nil, unknownTokenId: nil, endOfTurnTokenId: nil,
        addsBOS: false, chatTemplate: nil, maxLength: nil)
}

/// Every byte as a token and no merges: decoding sees exactly the bytes it is given.
func bytesOnlyTokenizer() throws -> BPETokenizer {
    var definition = tinyDefinition()
    definition.merges = []
    return try BPETokenizer(definition: definition)
}

/// The pieces the pre-tokenizer cuts `text` into.
func pieces(of text: String, _ kind: PreTokenizerKind) -> [String] {
    kind.pieces(of: text)
}


/// The error `body` throws, as a TokenizerError (nil when it throws nothing or something else).
func tokenizerError(_ body: () throws -> Void) -> TokenizerError? {
    do { try body() } catch let error as TokenizerError { return error } catch { return nil }
    return nil
}
