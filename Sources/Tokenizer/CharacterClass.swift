/// The classes the pre-tokenizer regexes test, per Unicode scalar, exactly as Hugging Face
/// `tokenizers` defines them (Oniguruma's \p{L}, \p{N}, \s and Rust's char::is_numeric). Swift's own
/// Unicode properties are a newer Unicode version and would disagree on recently assigned scalars.
struct CharacterClass: OptionSet, Sendable {
    let rawValue: UInt8

    static let letter = CharacterClass(rawValue: 1)
    static let number = CharacterClass(rawValue: 2)
    static let whitespace = CharacterClass(rawValue: 4)
    static let isolatedDigit = CharacterClass(rawValue: 8)
}

/// Two-stage lookup built once from `CharacterClass.runs`: the block of 256 scalars picks one of the
/// distinct blocks, which holds one class byte per scalar (about 40 KiB in all).
final class CharacterClassTable: @unchecked Sendable {
    static let shared = CharacterClassTable(runs: CharacterClass.runs)

    /// Block number for each 256-scalar block; immutable after init.
    private let blockOfScalarBlock: UnsafeMutablePointer<UInt16>
    private let blocks: UnsafeMutablePointer<UInt8>

    init(runs: [UInt32]) {
        let scalarCount = 0x110000
        var flat = [UInt8](repeating: 0, count: scalarCount)
        for (index, entry) in runs.enumerated() {
            let start = Int(entry >> 4)
            let end = index + 1 < runs.count ? Int(runs[index + 1] >> 4) : scalarCount
            if entry & 15 != 0 {
                for scalar in start..<end { flat[scalar] = UInt8(entry & 15) }
            }
        }
        var distinct: [[UInt8]: UInt16] = [:]
        var blockList: [[UInt8]] = []
        blockOfScalarBlock = .allocate(capacity: scalarCount / 256)
        for block in 0..<scalarCount / 256 {
            let contents = Array(flat[block * 256..<(block + 1) * 256])
            if let known = distinct[contents] {
                blockOfScalarBlock[block] = known
            } else {
                let number = UInt16(blockList.count)
                distinct[contents] = number
                blockList.append(contents)
                blockOfScalarBlock[block] = number
            }
        }
        blocks = .allocate(capacity: blockList.count * 256)
        for (number, contents) in blockList.enumerated() {
            (blocks + number * 256).initialize(from: contents, count: 256)
        }
    }

    deinit {
        blockOfScalarBlock.deallocate()
        blocks.deallocate()
    }

    @inline(__always)
    func classOf(_ scalar: UInt32) -> CharacterClass {
        let block = Int(blockOfScalarBlock[Int(scalar >> 8)])
        return CharacterClass(rawValue: blocks[block << 8 | Int(scalar & 255)])
    }
}
