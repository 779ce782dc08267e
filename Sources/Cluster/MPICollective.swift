import CMPI
import Foundation
import Training

/// Data-parallel ranks over Open MPI (`mpirun -np N srppo ppo|sft …`, or `srun` with PMIx). libmpi is
/// loaded at run time only when an MPI launcher started the process, so srppo builds and runs alone
/// without MPI installed.
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int

    private init() throws {
        var message = [CChar](repeating: 0, count: 512)
        guard srppo_mpi_init(&message, message.count) == 0 else {
            throw CollectiveError.unavailable(String(cString: message))
        }
        rank = Int(srppo_mpi_rank())
        size = Int(srppo_mpi_size())
    }

    /// Runs `body` with the ranks of this job: MPI ranks when an MPI launcher started the process
    /// (MPI is ended properly afterwards), else one process alone. When `body` fails on one rank, the
    /// job is aborted after `report` has shown the error, since the other ranks would otherwise wait
    /// for this one in their next collective operation forever (mpirun then names the failed rank).
    public static func run(report: (Error) -> Void, _ body: (Collective) throws -> Void) throws {
        guard srppo_mpi_launched() != 0 else { return try body(SingleProcess()) }
        let mpi = try MPICollective()
        do {
            try body(mpi)
        } catch {
            report(error)
            mpi.abort(code: 1)
        }
        mpi.finish()
    }

    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        try check("MPI_Allreduce", srppo_mpi_allreduce_sum_float(values, count))
    }

    public func sum(_ values: [Double]) throws -> [Double] {
        var result = values
        try check("MPI_Allreduce", result.withUnsafeMutableBufferPointer { srppo_mpi_allreduce_sum_double($0.baseAddress, $0.count) })
        return result
    }

    public func gather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        guard bytes.count <= Int(Int32.max) else { throw CollectiveError.tooLarge(bytes: bytes.count) }
        var sizes = [Int](repeating: 0, count: size)
        try check("MPI_Allgather", sizes.withUnsafeMutableBufferPointer { srppo_mpi_allgather_long(bytes.count, $0.baseAddress) })
        let total = sizes.reduce(0, +)
        guard total <= Int(Int32.max) else { throw CollectiveError.tooLarge(bytes: total) }
        var received = [UInt8](repeating: 0, count: total)
        let counts = sizes.map(Int32.init)
        try check("MPI_Allgatherv", bytes.withUnsafeBytes { send in
            received.withUnsafeMutableBytes { receive in
                srppo_mpi_allgather_bytes(send.baseAddress, Int32(bytes.count), receive.baseAddress, counts)
            }
        })
        var parts: [[UInt8]] = []
        var start = 0
        for n in sizes {
            parts.append(Array(received[start..<start + n]))
            start += n
        }
        return parts
    }

    /// Waits for every rank, then ends MPI (required before a rank exits normally).
    func finish() {
        _ = srppo_mpi_barrier()
        _ = srppo_mpi_finalize()
    }

    /// Ends every rank of the job with `code` (mpirun reports it): what a rank does when it fails,
    /// since the others would otherwise wait for it in their next collective forever.
    func abort(code: Int32) -> Never {
        srppo_mpi_abort(code)
        exit(code)
    }

    private func check(_ operation: String, _ code: Int32) throws {
        guard code == 0 else { throw CollectiveError.failed(operation: operation, code: Int(code)) }
    }
}

public enum CollectiveError: Error, CustomStringConvertible {
    case unavailable(String)
    case failed(operation: String, code: Int)
    case tooLarge(bytes: Int)

    public var description: String {
        switch self {
        case let .unavailable(message): return "started by an MPI launcher, but MPI is unusable: \(message)"
        case let .failed(operation, code): return "\(operation) failed with MPI error \(code)"
        case let .tooLarge(bytes): return "a rank's share to gather is \(bytes) bytes, more than MPI's int counts allow"
        }
    }
}
