import Foundation

/// Pieces known to encode as one token, looked up by their bytes before any merging. Immutable after
/// construction, so shared by all threads without locks.
///
/// Without `ignore_merges` it holds the vocabulary tokens whose own bytes BPE merges back into that
/// token, found once at load time; most words of common text are among them, so most pieces skip
/// merging altogether and still get exactly what merging gives. With `ignore_merges` (LLaMA-3) it
/// holds every vocabulary token, which is that option's definition.
final class PieceTable: @unchecked Sendable {
    /// `hash high 32 bits << 32 | entry index`, or `empty`.
    private let slots: UnsafeMutablePointer<UInt64>
    private let mask: Int
    private static let empty = UInt64.max

    private let ids: [Int32]
    /// Bytes of entry i: `bytes[starts[i]..<starts[i + 1]]`.
    private let bytes: [UInt8]
    private let starts: [Int]

    init(entries: [(bytes: ArraySlice<UInt8>, id: Int32)]) {
        var bits = 4
        while 1 << bits < entries.count * 2 { bits += 1 }
        mask = (1 << bits) - 1
        slots = .allocate(capacity: mask + 1)
        slots.initialize(repeating: Self.empty, count: mask + 1)
        var ids: [Int32] = [], bytes: [UInt8] = [], starts = [0]
        for entry in entries {
            let hash = entry.bytes.withUnsafeBufferPointer { Self.hash($0.baseAddress!, $0.count) }
            var slot = Int(truncatingIfNeeded: hash) & mask
            while slots[slot] != Self.empty { slot = (slot + 1) & mask }
            slots[slot] = hash & 0xFFFF_FFFF_0000_0000 | UInt64(ids.count)
            ids.append(entry.id)
            bytes.append(contentsOf: entry.bytes)
            starts.append(bytes.count)
        }
        self.ids = ids
        self.bytes = bytes
        self.starts = starts
    }

    deinit {
        slots.deallocate()
    }

    func id(of piece: UnsafePointer<UInt8>, count: Int) -> Int32? {
        let hash = Self.hash(piece, count)
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let found = slots[slot]
            if found == Self.empty { return nil }
            if found & 0xFFFF_FFFF_0000_0000 == hash & 0xFFFF_FFFF_0000_0000 {
                let entry = Int(found & 0xFFFF_FFFF)
                let start = starts[entry]
                if starts[entry + 1] - start == count,
                   bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress! + start, piece, count) == 0 }) {
                    return ids[entry]
                }
            }
            slot = (slot + 1) & mask
        }
    }

    /// FNV-1a, then a multiply so that both halves are mixed (the low bits pick the slot, the high
    /// bits are kept to reject most mismatches without comparing bytes).
    @inline(__always)
    private static func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for index in 0..<count { hash = (hash ^ UInt64(bytes[index])) &* 0x100_0000_01B3 }
        return (hash ^ hash >> 29) &* 0xBF58_476D_1CE4_E5B9
    }
}
