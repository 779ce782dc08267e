import ArgumentParser

/// `srppo`: the command-line entry point. Each subcommand lives in its own file.
struct SRPPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "srppo",
        abstract: "Self-Rewarding PPO for language models: SFT, coherent-reward PPO, scoring and serving.",
        subcommands: [
            ScoreCommand.self,
            SFTCommand.self,
            EvalCommand.self,
            DataCommand.self,
            InspectCommand.self,
            ExportCommand.self,
            ImageCommand.self,
            BenchCommand.self,
        ]
    )
}

SRPPO.main()
