/// Decodes ids as they arrive, returning only whole characters: bytes that may still become a
/// character once the next token comes are held back. The concatenation of everything `append`
/// returns plus `finish()` equals `decode` of all the ids, so streamed output and batch output agree
/// (ill-formed bytes become U+FFFD at the same places).
///
///     var stream = tokenizer.streamingDecoder()
///     for id in generated { print(stream.append(id), terminator: "") }
///     print(stream.finish())
public struct StreamingDecoder: Sendable {
    private let tokenizer: BPETokenizer
    private let skippingSpecialTokens: Bool
    private var pending: [UInt8] = []

    init(tokenizer: BPETokenizer, skippingSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skippingSpecialTokens = skippingSpecialTokens
    }

    /// Text completed by `id` (often empty while a multi-byte character is still arriving).
    public mutating func append(_ id: Int32) -> String {
        switch tokenizer.kind(of: id) {
        case nil:
            return ""
        case .special? where skippingSpecialTokens:
            return ""
        case .added?, .special?:
            return finish() + String(decoding: tokenizer.bytes(of: id), as: UTF8.self)
        case .ordinary?:
            pending.append(contentsOf: tokenizer.bytes(of: id))
            let complete = UTF8Boundary.completePrefixLength(pending)
            guard complete > 0 else { return "" }
            let text = String(decoding: pending[..<complete], as: UTF8.self)
            pending.removeFirst(complete)
            return text
        }
    }

    /// Whatever is still held (an unfinished character comes out as U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}

package enum UTF8Boundary {
    /// Length of the longest prefix of `bytes` that can be decoded now without changing the result of
    /// decoding more bytes later: everything except a trailing, well-formed but unfinished sequence.
    package static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        // An unfinished sequence is a lead byte followed by at most two continuation bytes.
        var start = bytes.count - 1
        while start >= 0 && start >= bytes.count - 3 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0, isUnfinishedSequence(bytes[start...]) else { return bytes.count }
        return start
    }

    /// Whether `tail` (lead byte first) is a proper prefix of some well-formed UTF-8 sequence.
    private static func isUnfinishedSequence(_ tail: ArraySlice<UInt8>) -> Bool {
        let lead = tail[tail.startIndex]
        let needed: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0: needed = 3; secondRange = 0xA0...0xBF
        case 0xED: needed = 3; secondRange = 0x80...0x9F
        case 0xE1...0xEF: needed = 3
        case 0xF0: needed = 4; secondRange = 0x90...0xBF
        case 0xF4: needed = 4; secondRange = 0x80...0x8F
        case 0xF1...0xF3: needed = 4
        default: return false
        }
        guard tail.count < needed else { return false }
        for (offset, byte) in tail.dropFirst().enumerated() {
            let range = offset == 0 ? secondRange : 0x80...0xBF
            guard range.contains(byte) else { return false }
        }
        return true
    }
}
