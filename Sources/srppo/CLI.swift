import ArgumentParser
import Cluster
import Foundation
import Compute
import Training

/// Shared command-line conventions: one-line errors on stderr, exit 1 for runtime failures
/// (usage errors exit 2, see main.swift).
enum CLI {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `body`; on error prints "srppo: <message>" to stderr and exits 1.
    static func orExit<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            FileHandle.standardError.write(Data("srppo: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

extension CLI {
    /// `orExit` for a command that may run as MPI ranks (`mpirun -np N srppo ppo|sft …`): `body` gets
    /// the ranks (one process alone without a launcher); a rank's error ends the whole job.
    static func ranks(_ body: (Collective) throws -> Void) throws {
        try orExit {
            try MPICollective.run(report: { FileHandle.standardError.write(Data("srppo: \($0)\n".utf8)) }) { collective in
                if collective.size > 1, collective.isLeader {
                    FileHandle.standardError.write(Data("srppo: data-parallel over \(collective.size) MPI ranks\n".utf8))
                }
                try body(collective)
            }
        }
    }
}

/// `--threads`, the same for every command that computes: the engine's worker count (kernels,
/// GEMMs, attention); per rank under mpirun.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads (default: all cores).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Sets the worker count when --threads was given.
    func apply() {
        if let threads { Parallel.threads = threads }
    }
}
