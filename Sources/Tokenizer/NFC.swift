/// Unicode NFC, the normalizer of Qwen2's tokenizer. Uses the standard library's own normalizer
/// (public but underscored); Foundation's precomposedStringWithCanonicalMapping is about 20 times
/// slower on Linux.
enum NFC {
    /// False when NFC cannot change the text: every scalar below U+0300 (no UTF-8 byte from 0xCC up)
    /// is a starter that neither decomposes nor composes.
    static func mayChange(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.contains { $0 >= 0xCC }
    }

    static func normalize(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var normalized: [UInt8] = []
        normalized.reserveCapacity(bytes.count)
        String(decoding: bytes, as: UTF8.self)._withNFCCodeUnits { normalized.append($0) }
        return normalized
    }
}
