/// GPT-2's byte-level alphabet: every byte is spelled as one printable character, so vocabularies
/// and merges can be stored as text. Printable Latin-1 bytes stand for themselves; the other 68 bytes
/// (controls, space, 0x7F–0xA0, 0xAD) take U+0100 onwards in byte order, so a space is "Ġ" (U+0120).
package enum ByteLevel {
    /// The character spelling each byte.
    package static let characterOfByte: [Unicode.Scalar] = {
        var result = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if standsForItself(UInt8(byte)) {
                result[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                result[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return result
    }()

    /// Inverse of `characterOfByte`, indexed by scalar value below 0x144 (-1: not a byte character).
    package static let byteOfCharacter: [Int16] = {
        var result = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in characterOfByte.enumerated() { result[Int(scalar.value)] = Int16(byte) }
        return result
    }()

    private static func standsForItself(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The bytes a byte-level token spells, or nil when some character is outside the alphabet (then
    /// Hugging Face's ByteLevel decoder uses the token's own UTF-8).
    package static func bytes(spelledBy token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard scalar.value < 0x144, case let byte = byteOfCharacter[Int(scalar.value)], byte >= 0 else { return nil }
            bytes.append(UInt8(byte))
        }
        return bytes
    }
}
