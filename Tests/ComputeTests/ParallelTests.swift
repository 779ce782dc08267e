import Compute
import XCTest

final class ParallelTests: XCTestCase {
    /// Counts calls per index from several threads (each index owns its slot, so no races).
    final class Tally: @unchecked Sendable {
        var counts: [Int]
        init(_ n: Int) { counts = [Int](repeating: 0, count: n) }
    }

    func testForEachRunsEveryIndexOnce() {
        for threads in [1, 2, 3] {
            withThreads(threads) {
                for count in [0, 1, 2, 7, 100] {
                    let tally = Tally(count)
                    tally.counts.withUnsafeMutableBufferPointer { slots in
                        Parallel.forEach(count) { slots[$0] += 1 }
                    }
                    XCTAssertEqual(tally.counts, [Int](repeating: 1, count: count), "\(threads) threads, \(count) chunks")
                }
            }
        }
    }

    func testForRangesCoversEachIndexOnceWithAlignedStarts() {
        for threads in [1, 2, 3] {
            withThreads(threads) {
                for (total, align) in [(0, 1), (1, 1), (7, 1), (65, 16), (100, 64), (1000, 12), (5, 16)] {
                    let covered = Tally(total)
                    let rangeStarts = Tally(total) // 1 where a range begins
                    covered.counts.withUnsafeMutableBufferPointer { slots in
                        rangeStarts.counts.withUnsafeMutableBufferPointer { starts in
                            Parallel.forRanges(total, align: align) { range in
                                starts[range.lowerBound] += 1
                                for i in range { slots[i] += 1 }
                            }
                        }
                    }
                    XCTAssertEqual(covered.counts, [Int](repeating: 1, count: total), "\(threads) threads, \(total) by \(align)")
                    for (i, n) in rangeStarts.counts.enumerated() where n > 0 {
                        XCTAssertEqual(i % align, 0, "a range starts at \(i), not a multiple of \(align)")
                    }
                    XCTAssertLessThanOrEqual(rangeStarts.counts.reduce(0, +), threads, "more ranges than threads")
                }
            }
        }
    }

    func testRegionsCanRunBackToBackAndNested() {
        // Many small regions in a row (the decode pattern), and a region inside a region (runs inline).
        withThreads(2) {
            let tally = Tally(64)
            tally.counts.withUnsafeMutableBufferPointer { slots in
                for _ in 0..<2000 {
                    Parallel.forRanges(64) { range in for i in range { slots[i] += 1 } }
                }
                Parallel.forEach(2) { outer in
                    Parallel.forEach(4) { inner in slots[outer * 32 + inner] += 1 }
                }
            }
            for i in 0..<64 {
                let nested = i % 32 < 4 ? 1 : 0
                XCTAssertEqual(tally.counts[i], 2000 + nested, "slot \(i)")
            }
        }
    }
}
