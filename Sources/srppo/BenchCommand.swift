import ArgumentParser

/// `srppo bench …`: benchmarks that print their shapes, threads and medians (see BENCHMARKS.md).
/// Each benchmark is a subcommand in its own file.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput (tokens/s, GFLOP/s) on this machine.",
        subcommands: [BenchAttachCommand.self, BenchGenerateCommand.self]
    )
}

extension Array where Element == Double {
    /// The middle value (the mean of the two middle ones for an even count) of a non-empty array.
    var median: Double {
        let sorted = self.sorted(), middle = count / 2
        return count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
