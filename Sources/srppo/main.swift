import ArgumentParser
import Foundation

/// `srppo`: the command-line entry point. Each subcommand lives in its own file.
struct SRPPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "srppo",
        abstract: "Self-Rewarding PPO for language models: SFT, coherent-reward PPO, scoring and serving.",
        subcommands: [
            ScoreCommand.self,
            TokenizeCommand.self,
            GenerateCommand.self,
            RewardCommand.self,
            SFTCommand.self,
            PPOCommand.self,
            EvalCommand.self,
            ReportCommand.self,
            CompareCommand.self,
            RewardSanityCommand.self,
            PipelineCommand.self,
            DataCommand.self,
            InspectCommand.self,
            ExportCommand.self,
            ImageCommand.self,
            BenchCommand.self,
        ]
    )
}

// Like SRPPO.main(), but a usage error exits 2 with one line on stderr (ArgumentParser's own
// convention is 64 and a usage block).
do {
    var command = try SRPPO.parseAsRoot()
    try command.run()
} catch {
    if SRPPO.exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data("srppo: \(SRPPO.message(for: error)) (see --help)\n".utf8))
        exit(2)
    }
    SRPPO.exit(withError: error)
}
