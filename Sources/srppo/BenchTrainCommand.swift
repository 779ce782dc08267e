import ArgumentParser
import Benchmarks
import Transformer

/// `srppo bench train`: one training step (forward, LM-head loss and backward, clipping, AdamW) on a
/// real model, full fine-tuning and LoRA, in tokens/s and GFLOP/s against the same run's sgemm.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training-step throughput (fwd + bwd + AdamW) on a real model, full and LoRA.",
        discussion: """
        Each timed step is what `srppo sft` does per optimizer step on one micro-batch: the training
        forward (activations kept, or recomputed with --recompute), the LM head's cross-entropy forward
        and backward on every scored token, the backward through every layer, global gradient-norm
        clipping and the AdamW update (full: all 135M parameters and their moments; LoRA: the adapters
        only). Random token ids; every token but the first is scored (the loss of plain LM training).
        Prints one JSON line per mode and thread count with medians of --repeats steps and the time of
        each phase, and the fp32 sgemm GFLOP/s of the model's forward shapes measured in the same run
        (after each step, median: the machine's load changes both alike).

        FLOPs counted (multiply-add = 2), F = the scoring forward's FLOPs (see `bench score`): full
        fine-tuning 3F (forward, ∂input and ∂weight of every product), LoRA 2F (the frozen base needs
        no ∂weight; the adapters' own products are not counted). Recomputation is not counted.

        Example:
          srppo bench train --model ~/.cache/srppo/models/SmolLM2-135M-Instruct.Q4_1.gguf
          srppo bench train --model SmolLM2.gguf --batch 8x256 --modes full,lora --threads 2 --repeats 5
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Batch shape, sequences x tokens.")
    var batch: String = "8x256"

    @Option(help: "Modes, comma-separated: full, lora.")
    var modes: String = "full,lora"

    @Option(help: "Thread counts to run, comma-separated.")
    var threads: String = "2"

    @Option(help: "Timed steps per measurement (the median is reported).")
    var repeats: Int = 3

    @Option(help: "LoRA rank (all seven projections are adapted).")
    var loraRank: Int = 16

    @Flag(help: "Keep only each layer's input and recompute the rest in the backward.")
    var recompute = false

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard loraRank >= 1 else { throw ValidationError("--lora-rank must be at least 1") }
        _ = try settings()
    }

    func settings() throws -> TrainBenchmark.Settings {
        try BenchCommand.settings {
            let shape = try TrainBenchmark.batchShape(batch), modes = try TrainBenchmark.modes(self.modes)
            return TrainBenchmark.Settings(sequences: shape.sequences, tokens: shape.tokens, modes: modes,
                                           threads: try Bench.threadList(threads), repeats: repeats, loraRank: loraRank,
                                           recompute: recompute)
        }
    }

    func run() throws {
        let settings = try settings()
        try BenchCommand.report { emit in
            try TrainBenchmark(model: ModelLoader.load(path: model).model, settings).run(emit: emit)
        }
    }
}
