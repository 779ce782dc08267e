import Foundation
import Compute

/// The processes of one data-parallel run (MPI ranks, `Sources/Cluster`) as a trainer sees them:
/// which one this is, and the collective operations data parallelism needs. Every rank holds the same
/// weights; each computes the gradients of its share of a step's examples, `sum` adds them up, and
/// every rank takes the same optimizer step. One process alone is `SingleProcess`.
public protocol Collective: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `values` by their sum over all ranks (the same result on every rank).
    func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws
    func sum(_ values: [Double]) throws -> [Double]
    /// Every rank's bytes, in rank order.
    func gather(_ bytes: [UInt8]) throws -> [[UInt8]]
}

extension Collective {
    /// Rank 0 writes the run folder (metrics, checkpoints, the final model) and shows progress.
    public var isLeader: Bool { rank == 0 }

    /// This rank's contiguous share of `count` items (the first ranks take one more when it does not divide).
    public func share(of count: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + min(rank, extra)
        return start..<start + base + (rank < extra ? 1 : 0)
    }

    func sum(_ buffer: AlignedBuffer<Float>) throws { try sum(buffer.pointer, count: buffer.count) }
}

/// A run of one process: every collective operation is the identity.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func sum(_ values: [Double]) throws -> [Double] { values }
    public func gather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
}

/// A collective that measures what goes through it: seconds spent in collective operations (the
/// transfer, and waiting for the slowest rank) and the bytes this rank contributed (none alone). For
/// benchmarks.
public final class MeteredCollective: Collective {
    public let base: Collective
    public private(set) var seconds = 0.0
    public private(set) var bytes = 0

    public init(_ base: Collective) { self.base = base }

    public var rank: Int { base.rank }
    public var size: Int { base.size }

    public func reset() {
        seconds = 0
        bytes = 0
    }

    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        try measure(bytes: count * 4) { try base.sum(values, count: count) }
    }

    public func sum(_ values: [Double]) throws -> [Double] {
        try measure(bytes: values.count * 8) { try base.sum(values) }
    }

    public func gather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try measure(bytes: bytes.count) { try base.gather(bytes) }
    }

    private func measure<T>(bytes count: Int, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            bytes += size > 1 ? count : 0
        }
        return try body()
    }
}
