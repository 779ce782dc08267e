import ArgumentParser
import Foundation
import Workflow

struct PipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "The whole method: data → SFT → PPO (EOS and token-wise reward, several seeds) → eval of PT, SFT, SRPPO → report.",
        discussion: """
        Every stage is the documented command, run as a child process of this one, so each stage \\
        leaves the same run folder it would leave by hand and a stopped pipeline continues where it \\
        stopped (same command again: finished stages are skipped, SFT and PPO runs resume from \\
        their newest checkpoint). Into --out:

          data/                 srppo data generate (+ chat-format copies: sft_chat.jsonl,
                                ppo_prompts_chat.jsonl, heldout_chat.jsonl)
          sft/                  srppo sft --model PT --data data/sft_chat.jsonl --seed SFT_SEED
                                (with --sft-per-seed: sft-seedS/ with --seed S, one per seed,
                                and seed S's PPO runs start from sft-seedS/model)
          ppo-P-seedS/          srppo ppo --pt PT --sft sft/model --prompts data/sft_chat.jsonl
                                --prompts data/ppo_prompts_chat.jsonl --out … --steps N --seed S
                                --reward-placement P        (P in placements, S in seeds)
          eval/LABEL.json       srppo eval --model M --set data/eval_ood.jsonl [--set data/eval_in_domain.jsonl]
                                --nll data/heldout_chat.jsonl   (LABEL: pt, sft or sft-seedS, srppo-P-seedS)
          report.html           srppo report
          A finished run's checkpoints/ are removed once its model/ is written (--keep-checkpoints
          keeps them): they only serve --resume.
          pipeline.json         the resolved settings; stages.jsonl: seconds per stage; pipeline.log

        Settings: --preset (small: about 20 minutes on 2 cores with one seed; medium: the README's \\
        experiment, about 150 minutes; large: several hours), \\
        then the JSON --config file (keys as in pipeline.json), then flags. sft_args, ppo_args and \\
        eval_args in the config pass extra flags to those stages.

        Examples:
          srppo pipeline --model SmolLM2-135M-Instruct.Q4_1.gguf --out runs/small
          srppo pipeline --model SmolLM2-135M-Instruct.Q4_1.gguf --out runs/large --preset large
          srppo pipeline --out runs/x --config my-pipeline.json --seeds 1,2,3 --placements eos
        """
    )

    @Option(help: "Pretrained model PT (GGUF file, safetensors file or Hugging Face folder).") var model: String?
    @Option(help: "Run folder.") var out: String
    @Option(help: "small (about 20 minutes here with one seed), medium (the README's experiment, about 150 minutes) or large (several hours).")
    var preset = "small"
    @Option(help: "JSON file of settings (keys as in pipeline.json); flags override it.") var config: String?
    @Option(help: "PPO seeds, comma-separated (one PPO run per seed and placement).") var seeds: String?
    @Flag(help: "One SFT run per seed (SFT seeded with it) instead of one shared SFT run; seed S's PPO runs start from SFT seed S.")
    var sftPerSeed = false
    @Option(help: "Reward placements, comma-separated from eos, tokenwise, length-normalized.") var placements: String?
    @Option(help: "PPO steps per run.") var ppoSteps: Int?
    @Option(help: "SFT epochs.") var sftEpochs: Int?
    @Option(help: "Demonstrations to generate.") var demos: Int?
    @Option(help: "Extra PPO prompts (no demonstrations) to generate.") var ppoPrompts: Int?
    @Option(help: "Out-of-domain evaluation tasks.") var evalTasks: Int?
    @Option(help: "Most new tokens per evaluation response.") var evalMaxNewTokens: Int?
    @Option(help: "Score PPO rewards through the srppod on this socket (it must serve PT and this run's sft/model).") var daemon: String?
    @Option(help: "Worker threads for every stage.") var threads: Int?
    @Option(help: "Executable that runs the stages' subcommands (default: this srppo).") var srppo: String?
    @Flag(help: "Keep each finished SFT/PPO run's checkpoints/ (by default removed once its model/ is written; a PPO run's are ~6 GB with SmolLM2).")
    var keepCheckpoints = false
    @Flag(help: "Print the stages' commands without running them.") var dryRun = false

    func run() throws {
        try CLI.orExit {
            let settings = try PipelineConfig.layered(preset: preset, file: config, overrides: try flagSettings())
            let pipeline = Pipeline(out: out, config: settings, executable: srppo ?? Pipeline.ownExecutable(), dryRun: dryRun,
                                    keepCheckpoints: keepCheckpoints)
            try pipeline.run()
        }
    }

    /// The settings given as flags, under pipeline.json's keys.
    private func flagSettings() throws -> [String: Any] {
        var settings: [String: Any] = [:]
        settings["model"] = model
        settings["seeds"] = try seeds.map { text in
            try text.split(separator: ",").map { part in
                guard let seed = UInt64(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--seeds needs comma-separated whole numbers, got \"\(text)\"")
                }
                return seed
            }
        }
        settings["placements"] = placements.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        settings["ppo_steps"] = ppoSteps
        if sftPerSeed { settings["sft_per_seed"] = true }
        settings["sft_epochs"] = sftEpochs
        settings["demos"] = demos
        settings["ppo_prompts"] = ppoPrompts
        settings["eval_tasks"] = evalTasks
        settings["eval_max_new_tokens"] = evalMaxNewTokens
        settings["daemon"] = daemon
        settings["threads"] = threads
        return settings
    }
}
