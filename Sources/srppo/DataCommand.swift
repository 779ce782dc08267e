import ArgumentParser
import Evaluation
import Foundation
import ModelFiles

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Task data for SFT, PPO and evaluation.",
        subcommands: [Generate.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate",
            abstract: "Write verifiable instruction-following tasks in IFEval format.",
            discussion: """
            Writes into --out: demos.jsonl (prompt + reference "response", for SFT), ppo_prompts.jsonl
            (prompts only), eval_ood.jsonl (instruction combinations never used in training),
            eval_in_domain.jsonl (new tasks with training combinations; both eval sets carry the
            reference as "reference") and manifest.json. Every row has IFEval's fields ("key",
            "prompt", "instruction_id_list", "kwargs"), so `srppo eval` checks it. The same seed and
            sizes give byte-identical files.

            Example:
              srppo data generate --out runs/data --seed 1
            """
        )

        @Option(help: "Output folder (created if missing).")
        var out: String

        @Option(help: "Random seed.")
        var seed: UInt64 = 1

        @Option(help: "Demonstrations (SFT).")
        var demos: Int = TaskSizes.small.demonstrations

        @Option(help: "PPO prompts without demonstrations.")
        var ppoPrompts: Int = TaskSizes.small.ppoPrompts

        @Option(help: "Out-of-domain evaluation tasks.")
        var eval: Int = TaskSizes.small.evalOutOfDomain

        @Option(help: "In-domain held-out evaluation tasks.")
        var heldOut: Int = TaskSizes.small.evalInDomain

        func validate() throws {
            for (name, value) in [("--demos", demos), ("--ppo-prompts", ppoPrompts), ("--eval", eval), ("--held-out", heldOut)] where value < 0 {
                throw ValidationError("\(name) must not be negative")
            }
        }

        func run() throws {
            let sizes = TaskSizes(demonstrations: demos, ppoPrompts: ppoPrompts, evalOutOfDomain: eval, evalInDomain: heldOut)
            let data = try CLI.orExit { try TaskGenerator(seed: seed).generate(sizes) }
            try CLI.orExit {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                for file in try data.files(seed: seed) {
                    try AtomicFile.write(file.data, to: (out as NSString).appendingPathComponent(file.name))
                }
            }
            print("wrote \(demos) demonstrations, \(ppoPrompts) PPO prompts, \(eval) out-of-domain and \(heldOut) in-domain "
                  + "evaluation tasks to \(out) (\(data.trainingCombinations.count) training and "
                  + "\(data.heldOutCombinations.count) held-out instruction combinations)")
        }
    }
}
