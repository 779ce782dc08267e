/// Finds added tokens (`<|im_start|>`, `<|eot_id|>`, …) in text as Hugging Face does: leftmost match
/// first, the longest one where several start at the same byte. Text between matches goes on to
/// normalization and pre-tokenization; the tokens themselves are never split.
package struct AddedTokenMatcher: Sendable {
    private struct Candidate: Sendable {
        let bytes: [UInt8]
        let id: Int32
    }

    /// Whether some token starts with the byte, so most bytes are rejected with one load.
    private var startsSomeToken = [Bool](repeating: false, count: 256)
    /// Candidates by first byte, longest first.
    private var candidates: [UInt8: [Candidate]] = [:]

    package init(_ tokens: [(content: String, id: Int32)]) {
        for token in tokens {
            let bytes = Array(token.content.utf8)
            guard let first = bytes.first else { continue }
            candidates[first, default: []].append(Candidate(bytes: bytes, id: token.id))
            startsSomeToken[Int(first)] = true
        }
        for key in candidates.keys { candidates[key]!.sort { $0.bytes.count > $1.bytes.count } }
    }

    package var isEmpty: Bool { candidates.isEmpty }

    /// Calls `text` for each stretch between matches (never empty) and `token` for each match, in order.
    package func forEachSegment(of bytes: UnsafeBufferPointer<UInt8>, token: (Int32) -> Void,
                        text: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard !isEmpty else {
            if !bytes.isEmpty { text(bytes) }
            return
        }
        var segmentStart = 0, position = 0
        while position < bytes.count {
            let mayStart = startsSomeToken.withUnsafeBufferPointer { $0[Int(bytes[position])] }
            guard mayStart, let match = longestMatch(in: bytes, at: position) else {
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
