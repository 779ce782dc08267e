import ArgumentParser
import Foundation
import ModelFiles
import Workflow

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Paired comparison of every SRPPO policy with the SFT model it started from, with bootstrap intervals over tasks.",
        discussion: """
        RUN is a pipeline folder. Reads the per-task verdicts in RUN/eval/*.rows.jsonl (`srppo eval \\
        --details`) and pairs srppo-P-V with sft-V (or the shared sft): V is seedS (pooled over the \\
        seeds of a placement) or demosN (the data-scarcity runs, one each). For every IFEval set and \\
        accuracy (prompt and instruction level, strict and loose) it reports the mean difference \\
        SRPPO − SFT over tasks with a 95% percentile bootstrap interval (10 000 resamples, seeded), \\
        per seed and pooled (a task's difference averaged over seeds), and a verdict: "beats" (the \\
        interval is above 0), "worse" (below 0) or "no difference".

        Writes RUN/comparison.json and prints a table.

        Example:
          srppo compare runs/medium
        """
    )

    @Argument(help: "Pipeline run folder.") var folder: String
    @Option(help: "Write the JSON here (default: RUN/comparison.json).") var output: String?
    @Option(help: "Seed of the bootstrap's random stream.") var seed: UInt64 = 0

    func run() throws {
        try CLI.orExit {
            let comparisons = try RunComparison.compare(folder: folder, seed: seed)
            let path = output ?? (folder as NSString).appendingPathComponent("comparison.json")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(encoder.encode(comparisons), to: path)
            print(RunComparison.table(comparisons), terminator: "")
            print("wrote \(path)")
        }
    }
}
