/// Merge rules keyed by the ids of the two tokens they join: open addressing on (left, right), each
/// slot holding the key and, beside it in the same cache line, the rank (position in the merge list;
/// lower merges first) and the joined token's id. A lookup is one cache miss at most.
final class MergeTable: @unchecked Sendable {
    /// Returned by `lookup` when no rule joins the pair.
    static let absent = UInt64.max

    /// Slot i is `slots[2i]` (key) and `slots[2i + 1]` (rank << 32 | joined id).
    private let slots: UnsafeMutablePointer<UInt64>
    private let shift: UInt64
    private let mask: Int

    /// `rules` are (left id, right id, joined id) in rank order. A pair listed twice keeps its last
    /// rank, as Hugging Face's map construction does.
    init(rules: [(left: Int32, right: Int32, joined: Int32)]) {
        var bits = 4
        while 1 << bits < rules.count * 2 { bits += 1 }
        mask = (1 << bits) - 1
        shift = UInt64(64 - bits)
        slots = .allocate(capacity: 2 * (mask + 1))
        slots.initialize(repeating: Self.absent, count: 2 * (mask + 1))
        for (rank, rule) in rules.enumerated() {
            let key = Self.key(rule.left, rule.right)
            var slot = slot(of: key)
            while slots[2 * slot] != Self.absent && slots[2 * slot] != key { slot = (slot + 1) & mask }
            slots[2 * slot] = key
            slots[2 * slot + 1] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: rule.joined))
        }
    }

    deinit {
        slots.deallocate()
    }

    /// `rank << 32 | joined id`, or `absent`.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        let key = Self.key(left, right)
        var slot = slot(of: key)
        while true {
            let found = slots[2 * slot]
            if found == key { return slots[2 * slot + 1] }
            if found == Self.absent { return Self.absent }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func slot(of key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }
}

/// Scratch memory for one `encode` call: decoded scalars of the current text, and the symbol list and
/// heap of the piece being merged. Grows to the largest text seen; never shared between threads.
final class EncodeWorkspace {
    private(set) var scalars = UnsafeMutablePointer<UInt32>.allocate(capacity: 0)
    private(set) var classes = UnsafeMutablePointer<CharacterClass>.allocate(capacity: 0)
    private(set) var byteOffsets = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    private var scalarCapacity = 0

    private(set) var symbolIds = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private(set) var previous = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private(set) var next = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private(set) var heap = UnsafeMutablePointer<UInt64>.allocate(capacity: 0)
    private var symbolCapacity = 0

    deinit {
        scalars.deallocate(); classes.deallocate(); byteOffsets.deallocate()
        symbolIds.deallocate(); previous.deallocate(); next.deallocate(); heap.deallocate()
    }

    /// Decodes valid UTF-8 into `scalars`, `classes` and `byteOffsets` (relative to `bytes`).
    func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> ScalarText {
        if bytes.count > scalarCapacity {
            scalars.deallocate(); classes.deallocate(); byteOffsets.deallocate()
            scalarCapacity = max(bytes.count, scalarCapacity * 2)
            scalars = .allocate(capacity: scalarCapacity)
            classes = .allocate(capacity: scalarCapacity)
            byteOffsets = .allocate(capacity: scalarCapacity + 1)
        }
        let table = CharacterClassTable.shared
        var count = 0, offset = 0
        let base = bytes.baseAddress!
        while offset < bytes.count {
            let lead = UInt32(base[offset])
            var scalar: UInt32, length: Int
            if lead < 0x80 {
                scalar = lead; length = 1
            } else if lead < 0xE0 {
                scalar = (lead & 0x1F) << 6 | UInt32(base[offset + 1] & 0x3F); length = 2
            } else if lead < 0xF0 {
                scalar = (lead & 0x0F) << 12 | UInt32(base[offset + 1] & 0x3F) << 6 | UInt32(base[offset + 2] & 0x3F)
                length = 3
            } else {
                scalar = (lead & 0x07) << 18 | UInt32(base[offset + 1] & 0x3F) << 12
                    | UInt32(base[offset + 2] & 0x3F) << 6 | UInt32(base[offset + 3] & 0x3F)
                length = 4
            }
            scalars[count] = scalar
            classes[count] = table.classOf(scalar)
            byteOffsets[count] = offset
            count += 1
            offset += length
        }
        byteOffsets[count] = offset
        return ScalarText(scalars: scalars, classes: classes, byteOffsets: byteOffsets, count: count)
    }

    package func reserveSymbols(_ count: Int) {
        guard count > symbolCapacity else { return }
        symbolIds.deallocate(); previous.deallocate(); next.deallocate(); heap.deallocate()
        symbolCapacity = max(count, symbolCapacity * 2, 64)
        symbolIds = .allocate(capacity: symbolCapacity)
        previous = .allocate(capacity: symbolCapacity)
        next = .allocate(capacity: symbolCapacity)
        heap = .allocate(capacity: 3 * symbolCapacity)
    }
}

/// Byte-pair merging of one piece, as Hugging Face's BPE model does it: start from one token per byte,
/// then repeatedly join the adjacent pair whose rule has the lowest rank (the leftmost on ties) until
/// no rule applies. A binary heap of candidate pairs keeps long pieces (runs of spaces, minified
/// code) at O(n log n); entries made stale by an earlier merge are skipped when popped.
struct BytePairMerger {
    let merges: MergeTable
    /// Token id of each single byte; -1 where the vocabulary lacks the byte's character.
    let byteTokenIds: [Int32]
    /// What a missing byte becomes (nil: it is dropped, its neighbours become adjacent).
    let missingByteTokenId: Int32?
    let fusesMissingBytes: Bool

    func appendTokens(of bytes: UnsafePointer<UInt8>, count byteCount: Int, workspace: EncodeWorkspace, to output: inout [Int32]) {
        if byteCount == 1, case let id = byteTokenIds[Int(bytes[0])], id >= 0 {
            output.append(id)
            return
        }
        workspace.reserveSymbols(byteCount)
        let ids = workspace.symbolIds, previous = workspace.previous, next = workspace.next
        var heap = CandidateHeap(storage: workspace.heap)
        var count = 0
        byteTokenIds.withUnsafeBufferPointer { byteIds in
            var lastWasMissing = false
            for k in 0..<byteCount {
                var id = byteIds[Int(bytes[k])]
                if id < 0 {
                    guard let missing = missingByteTokenId, !(fusesMissingBytes && lastWasMissing) else { continue }
                    id = missing
                    lastWasMissing = true
                } else {
                    lastWasMissing = false
                }
                ids[count] = id
                count += 1
            }
        }
        guard count > 0 else { return }
        for k in 0..<count {
            previous[k] = Int32(k - 1)
            next[k] = k + 1 < count ? Int32(k + 1) : -1
        }
        for k in 0..<count - 1 {
            heap.pushIfMergeable(merges.lookup(ids[k], ids[k + 1]), position: k)
        }
        while let (rank, position) = heap.popMin() {
            let right = Int(next[position])
            guard ids[position] >= 0, right >= 0 else { continue }
            let rule = merges.lookup(ids[position], ids[right])
            guard rule != MergeTable.absent, rule >> 32 == rank else { continue }
            ids[position] = Int32(truncatingIfNeeded: rule)
            ids[right] = -1
            let after = Int(next[right])
            next[position] = Int32(after)
            if after >= 0 {
                previous[after] = Int32(position)
                heap.pushIfMergeable(merges.lookup(ids[position], ids[after]), position: position)
            }
            let before = Int(previous[position])
            if before >= 0 {
                heap.pushIfMergeable(merges.lookup(ids[before], ids[position]), position: before)
            }
        }
        var k = 0
        while k >= 0 {
            output.append(ids[k])
            k = Int(next[k])
        }
    }
}

/// Min-heap of `rank << 32 | position` in caller-owned storage: ordering by the packed value orders by
/// rank, then by position.
private struct CandidateHeap {
    let storage: UnsafeMutablePointer<UInt64>
    var count = 0

    mutating func pushIfMergeable(_ rule: UInt64, position: Int) {
        guard rule != MergeTable.absent else { return }
        let entry = rule & 0xFFFF_FFFF_0000_0000 | UInt64(position)
        var child = count
        count += 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard storage[parent] > entry else { break }
            storage[child] = storage[parent]
            child = parent
        }
        storage[child] = entry
    }

    mutating func popMin() -> (rank: UInt64, position: Int)? {
        guard count > 0 else { return nil }
        let top = storage[0]
        count -= 1
        let last = storage[count]
        var parent = 0
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && storage[child + 1] < storage[child] { child += 1 }
            guard storage[child] < last else { break }
            storage[parent] = storage[child]
            parent = child
        }
        if count > 0 { storage[parent] = last }
        return (top >> 32, Int(top & 0xFFFF_FFFF))
    }
}
