import ArgumentParser
import Foundation
import ModelFiles
import Report

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report (SVG plots, evaluation tables) for a run folder.",
        discussion: """
        RUN is a pipeline folder, or a single `srppo sft` / `srppo ppo` run folder. The report reads \\
        every metrics.jsonl in RUN and its immediate subfolders (SFT runs: training and held-out \\
        loss; PPO runs: reward, KL to SFT and to PT, response length, EOS and truncation rates, value \\
        loss, explained variance) and every evaluation result (`srppo eval --output`) in RUN/eval/ \\
        and RUN/eval.json, and writes RUN/report.html: one file, no scripts, nothing fetched.

        The results table gives every model once: evaluations named LABEL-seedN are summarized \\
        per LABEL as mean ± standard deviation over seeds.

        Example:
          srppo report runs/pipeline-small
        """
    )

    @Argument(help: "Run folder.")
    var folder: String

    @Option(help: "Write the HTML here (default: RUN/report.html).")
    var output: String?

    func run() throws {
        try CLI.orExit {
            var isDirectory: ObjCBool = false
            let run = folder
            guard FileManager.default.fileExists(atPath: run, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CLI.Failure(description: "\(run): not a run folder")
            }
            let report = RunReport(folder: run)
            guard !report.stages.isEmpty || !report.evaluations.isEmpty else {
                throw CLI.Failure(description: "\(run): no metrics.jsonl and no evaluation results to report")
            }
            let path = output ?? (run as NSString).appendingPathComponent("report.html")
            try AtomicFile.write(Data(report.page().html().utf8), to: path)
            print("wrote \(path) (\(report.stages.count) training runs, \(report.evaluations.count) evaluations)")
        }
    }
}
