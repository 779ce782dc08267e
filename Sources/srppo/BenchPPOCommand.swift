import ArgumentParser
import Benchmarks
import ModelFiles

/// `srppo bench ppo`: seconds per PPO step and where they go (generate, score, prepare, train).
struct BenchPPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "Seconds per PPO step with the coherent reward, split by phase.",
        discussion: """
        Runs --warmup untimed and then --steps timed PPO steps (the same trainer `srppo ppo` runs,
        embedded scoring, nothing written) and prints one JSON line per timed step and a summary with
        medians: seconds per step and per phase — generate (sampling the responses with the KV cache),
        score (PT and SFT log-probs of every response), prepare (the actor's old log-probs and the
        critic's values: one forward each), train (epochs × minibatches of actor and critic
        forward + backward + AdamW) — and response tokens per second. Under `mpirun -np N` each rank
        takes its share of every step (as `srppo ppo` does) and the summary adds the seconds spent in
        collective operations (summing gradients, gathering rollouts; waiting for the slowest rank
        included) and the bytes each rank sends per step. Without --sft, SFT is a second
        copy of PT (the reward is then 0, the work the same). Prompts: --prompts JSONL, or eight short
        built-in questions rendered with the model's chat template.

        Example:
          srppo bench ppo --pt SmolLM2-135M-Instruct.Q4_1.gguf --threads 2
          mpirun -np 2 srppo bench ppo --pt SmolLM2-135M-Instruct.Q4_1.gguf --threads 1
        """
    )

    @Option(help: "Pretrained model.") var pt: String
    @Option(help: "SFT model (default: a second copy of --pt).") var sft: String?
    @Option(help: "Prompt file (JSONL: prompt, messages or prompt_ids).") var prompts: String?
    @Option(help: "Timed steps.") var steps = 3
    @Option(help: "Untimed steps first.") var warmup = 1
    @Option(help: "Prompts per step.") var promptsPerStep = 4
    @Option(help: "Responses sampled per prompt.") var samplesPerPrompt = 2
    @Option(help: "Longest response in tokens.") var maxNewTokens = 32
    @Option(help: "Passes over each step's rollouts.") var epochs = 1
    @Option(help: "Responses per optimizer step.") var miniBatchSize = 8
    @Option(help: "Train actor and critic as LoRA adapters of this rank (default: full fine-tuning).") var loraRank: Int?
    @Flag(help: "Forward the prompt its samples share once (scoring and the actor's old log-probs), as `srppo ppo --share-prefixes`.")
    var sharePrefixes = false
    @Flag(help: "Run the critic's forward of the first minibatch again in its update instead of reusing the one that gave its values (the difference the reuse makes).")
    var separateForwards = false
    @Option(help: "Sequences decoded together while sampling.") var generateBatch = 8
    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        for (name, value) in [("--steps", steps), ("--prompts-per-step", promptsPerStep), ("--samples-per-prompt", samplesPerPrompt),
                              ("--max-new-tokens", maxNewTokens), ("--epochs", epochs), ("--mini-batch-size", miniBatchSize),
                              ("--generate-batch", generateBatch)] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be at least 0") }
    }

    func run() throws {
        threading.apply()
        try CLI.ranks { ranks in
            let settings = PPOBenchmark.Settings(
                pt: pt, sft: sft, prompts: prompts, steps: steps, warmup: warmup, promptsPerStep: promptsPerStep,
                samplesPerPrompt: samplesPerPrompt, maxNewTokens: maxNewTokens, epochs: epochs, miniBatchSize: miniBatchSize,
                lora: try loraRank.map { try LoRAOptions.config(rank: $0, alpha: nil, targets: nil) }, sharePrefixes: sharePrefixes,
                reusesUpdateForwards: !separateForwards, generateBatch: generateBatch)
            try PPOBenchmark(settings).run(ranks: ranks, emit: try JSONLines.Writer(path: nil).write)
        }
    }
}
