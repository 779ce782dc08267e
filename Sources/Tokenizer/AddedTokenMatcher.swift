/// Finds added tokens (`<|im_start|>`, `<|eot_id|>`, …) in text as Hugging Face does: leftmost match
/// first, the longest one where several start at the same byte. Text between matches goes on to
/// normalization and pre-tokenization; the tokens themselves are never split.
struct AddedTokenMatcher: Sendable {
    private struct Candidate: Sendable {
        let bytes: [UInt8]
        let id: Int32
    }

    /// Bit per possible first byte, so most bytes are rejected with one test.
    private var firstBytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Candidates by first byte, longest first.
    private var candidates: [UInt8: [Candidate]] = [:]

    init(_ tokens: [(content: String, id: Int32)]) {
        for token in tokens {
            let bytes = Array(token.content.utf8)
            guard let first = bytes.first else { continue }
            candidates[first, default: []].append(Candidate(bytes: bytes, id: token.id))
            switch first >> 6 {
            case 0: firstBytes.0 |= 1 << UInt64(first & 63)
            case 1: firstBytes.1 |= 1 << UInt64(first & 63)
            case 2: firstBytes.2 |= 1 << UInt64(first & 63)
            default: firstBytes.3 |= 1 << UInt64(first & 63)
            }
        }
        for key in candidates.keys { candidates[key]!.sort { $0.bytes.count > $1.bytes.count } }
    }

    var isEmpty: Bool { candidates.isEmpty }

    @inline(__always)
    private func mayStart(_ byte: UInt8) -> Bool {
        let word: UInt64
        switch byte >> 6 {
        case 0: word = firstBytes.0
        case 1: word = firstBytes.1
        case 2: word = firstBytes.2
        default: word = firstBytes.3
        }
        return word >> UInt64(byte & 63) & 1 != 0
    }

    /// Calls `text` for each stretch between matches (never empty) and `token` for each match, in order.
    func forEachSegment(of bytes: UnsafeBufferPointer<UInt8>, token: (Int32) -> Void,
                        text: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard !isEmpty else {
            if !bytes.isEmpty { text(bytes) }
            return
        }
        var segmentStart = 0, position = 0
        while position < bytes.count {
            guard mayStart(bytes[position]), let match = longestMatch(in: bytes, at: position) else {
                position += 1
                continue
            }
            if position > segmentStart { text(UnsafeBufferPointer(rebasing: bytes[segmentStart..<position])) }
            token(match.id)
            position += match.length
            segmentStart = position
        }
        if bytes.count > segmentStart { text(UnsafeBufferPointer(rebasing: bytes[segmentStart..<bytes.count])) }
    }

    private func longestMatch(in bytes: UnsafeBufferPointer<UInt8>, at position: Int) -> (id: Int32, length: Int)? {
        guard let list = candidates[bytes[position]] else { return nil }
        for candidate in list where position + candidate.bytes.count <= bytes.count {
            let equal = candidate.bytes.withUnsafeBufferPointer { pattern in
                pattern.elementsEqual(UnsafeBufferPointer(rebasing: bytes[position..<position + pattern.count]))
            }
            if equal { return (candidate.id, candidate.bytes.count) }
        }
        return nil
    }
}
