import ArgumentParser

/// `srppo bench …`: benchmarks that print their shapes, threads and medians (see BENCHMARKS.md).
/// Each benchmark is a subcommand in its own file.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput (tokens/s, GFLOP/s) on this machine.",
        subcommands: [BenchAttachCommand.self, BenchGemmCommand.self, BenchScoreCommand.self, BenchKernelsCommand.self,
                      BenchTokenizeCommand.self, BenchGenerateCommand.self, BenchDaemonCommand.self, BenchTrainCommand.self,
                      BenchPPOCommand.self]
    )
}
