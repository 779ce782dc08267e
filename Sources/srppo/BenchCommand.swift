import ArgumentParser
import Benchmarks
import Foundation
import ModelFiles

/// `srppo bench …`: benchmarks that print their shapes, threads and medians (see BENCHMARKS.md).
/// Each benchmark is a subcommand in its own file; what it measures is in the Benchmarks module.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput (tokens/s, GFLOP/s) on this machine.",
        subcommands: [BenchAttachCommand.self, BenchGemmCommand.self, BenchScoreCommand.self, BenchKernelsCommand.self,
                      BenchTokenizeCommand.self, BenchGenerateCommand.self, BenchDaemonCommand.self, BenchTrainCommand.self,
                      BenchPPOCommand.self]
    )

    /// Settings built from flags: what the Benchmarks module refuses is a usage error (exit 2, see main.swift).
    static func settings<T>(_ build: () throws -> T) throws -> T {
        do {
            return try build()
        } catch let error as BenchmarkError {
            throw ValidationError(error.description)
        }
    }

    /// Runs a benchmark, printing each line it reports as one JSON object on stdout; a failure is
    /// one line on stderr and exit 1.
    static func report(_ run: (Emit) throws -> Void) throws {
        let out = try JSONLines.Writer(path: nil)
        try CLI.orExit { try run(out.write) }
    }

    /// "1,4,16" as integers, items that are not numbers left out (the caller checks what is left).
    static func integers(_ text: String) -> [Int] {
        text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// This srppo's executable, symbolic links resolved: the daemon and attach benchmarks start it or
    /// the srppod beside it.
    static var executable: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }
}
