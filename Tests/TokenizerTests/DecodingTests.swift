import Tokenizer
import XCTest

/// Decoding as Hugging Face does it, and the streaming decoder agreeing with it.
final class DecodingTests: XCTestCase {
    /// Token ids of raw bytes in the bytes-only tokenizer (byte b is token b).
    private func ids(_ bytes: [UInt8]) -> [Int32] { bytes.map(Int32.init) }

    func testDecodeJoinsBytesAndCopiesAddedTokens() throws {
        let tokenizer = try bytesOnlyTokenizer()
        let end: Int32 = 270
        XCTAssertEqual(tokenizer.decode(ids([0xE2, 0x82, 0xAC])), "€")
        // As tokenizers 0.23: the bytes before an added token are decoded on their own.
        XCTAssertEqual(tokenizer.decode(ids([0xE2]) + [end] + ids([0x82, 0xAC])), "\u{FFFD}<|end|>\u{FFFD}\u{FFFD}")
        XCTAssertEqual(tokenizer.decode(ids([0xE2]) + [end] + ids([0x82, 0xAC]), skippingSpecialTokens: true), "€")
        XCTAssertEqual(tokenizer.decode([-1, 104, 99999, 105]), "hi")
    }

    func testIllFormedUTF8BecomesOneReplacementPerMaximalSubpart() throws {
        let tokenizer = try bytesOnlyTokenizer()
        let cases: [([UInt8], String)] = [
            ([0xF0, 0x9F, 0x98, 0x41], "\u{FFFD}A"),
            ([0xE0, 0x80], "\u{FFFD}\u{FFFD}"),
            ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),
            ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),
            ([0xC0, 0xAF], "\u{FFFD}\u{FFFD}"),
            ([0xE2, 0x82], "\u{FFFD}"),
        ]
        for (bytes, expected) in cases {
            XCTAssertEqual(tokenizer.decode(ids(bytes)), expected, "\(bytes)")
        }
    }

    func testStreamingDecoderAgreesWithDecode() throws {
        let tokenizer = try bytesOnlyTokenizer()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<500 {
            var sequence: [Int32] = []
            for _ in 0..<Int.random(in: 0...40, using: &generator) {
                switch Int.random(in: 0..<10, using: &generator) {
                case 0: sequence.append(270)                                       // special token
                case 1: sequence.append(Int32.random(in: 0x80...0xFF, using: &generator))  // any high byte
                default: sequence += ids(Array(String(Self.randomScalar(&generator)).utf8))
                }
            }
            for skipping in [false, true] {
                var stream = tokenizer.streamingDecoder(skippingSpecialTokens: skipping)
                var streamed = ""
                for id in sequence { streamed += stream.append(id) }
                streamed += stream.finish()
                XCTAssertEqual(streamed, tokenizer.decode(sequence, skippingSpecialTokens: skipping), "round \(round): \(sequence)")
            }
        }
    }

    func testStreamingNeverEmitsBrokenCharactersOfValidText() throws {
        let tokenizer = try bytesOnlyTokenizer()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let text = String(String.UnicodeScalarView((0..<Int.random(in: 1...30, using: &generator)).map { _ in Self.randomScalar(&generator) }))
            var stream = tokenizer.streamingDecoder()
            var streamed = ""
            for id in ids(Array(text.utf8)) {
                streamed += stream.append(id)
                // Every chunk so far is whole characters of the text: no U+FFFD for a half character.
                XCTAssertTrue(text.unicodeScalars.starts(with: streamed.unicodeScalars), "\(streamed.debugDescription) of \(text.debugDescription)")
            }
            XCTAssertEqual(stream.finish(), "")
            XCTAssertEqual(streamed, text)
        }
    }

    func testUnfinishedSequencesAreHeldBack() {
        XCTAssertEqual(UTF8Boundary.completePrefixLength([0x41, 0xF0, 0x9F, 0x98]), 1)
        XCTAssertEqual(UTF8Boundary.completePrefixLength([0x41, 0xF0, 0x9F, 0x98, 0x80]), 5)
        XCTAssertEqual(UTF8Boundary.completePrefixLength([0xE2, 0x82]), 0)
        XCTAssertEqual(UTF8Boundary.completePrefixLength([0xE0, 0x80]), 2)   // can never complete: emit now
        XCTAssertEqual(UTF8Boundary.completePrefixLength([0xED, 0xA0]), 2)   // surrogate range
        XCTAssertEqual(UTF8Boundary.completePrefixLength([0x80, 0x80, 0x80]), 3)
        XCTAssertEqual(UTF8Boundary.completePrefixLength([]), 0)
    }

    /// A scalar from anywhere in Unicode, often outside ASCII.
    static func randomScalar(_ generator: inout SystemRandomNumberGenerator) -> Unicode.Scalar {
        let ranges: [ClosedRange<UInt32>] = [0x20...0x7E, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFF, 0x10000...0x10FFFF]
        let range = ranges.randomElement(using: &generator)!
        return Unicode.Scalar(UInt32.random(in: range, using: &generator))!
    }
}
