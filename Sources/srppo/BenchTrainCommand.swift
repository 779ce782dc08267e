import ArgumentParser
import Foundation
import Tensor
import Training
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

    func shape() throws -> (sequences: Int, tokens: Int) {
        let parts = batch.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 1 else {
            throw ValidationError("--batch must look like 8x256 (sequences x tokens, tokens ≥ 2), got \"\(batch)\"")
        }
        return (parts[0], parts[1])
    }

    func modeList() throws -> [String] {
        let list = modes.split(separator: ",").map(String.init)
        guard !list.isEmpty, list.allSatisfy({ $0 == "full" || $0 == "lora" }) else {
            throw ValidationError("--modes must list full and/or lora, got \"\(modes)\"")
        }
        return list
    }

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard loraRank >= 1 else { throw ValidationError("--lora-rank must be at least 1") }
        _ = try shape()
        _ = try modeList()
        _ = try Bench.threadList(threads)
    }

    func run() throws {
        let loaded = try CLI.orExit { try ModelLoader.load(path: model) }
        let llama = loaded.model
        let config = llama.config
        let (sequences, tokens) = try shape()
        var state: UInt64 = 0x7EA1
        let requests = (0..<sequences).map { _ in
            ScoringRequest(tokens: (0..<tokens).map { _ -> Int32 in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int32((state >> 33) % UInt64(config.vocabSize))
            }, firstScored: 1)
        }
        let scoredRows = sequences * (tokens - 1)
        let forwardFlops = Bench.forwardFlops(config, sequences: sequences, tokens: tokens, scoredRows: scoredRows)
        for threadCount in try Bench.threadList(threads) {
            Parallel.threads = threadCount
            for mode in try modeList() {
                let full = mode == "full"
                llama.adapters = full ? nil : LoRAAdapters(config: LoRAConfig(rank: loraRank), model: config, seed: 1)
                let parameters = full ? TrainableParameters.fullModel(llama) : TrainableParameters.adapters(llama.adapters!)
                let optimizer = AdamW(config: AdamWConfig(weightDecay: 0.1), parameterCount: parameters.count)
                // The steps change the weights: restore them afterwards for the next mode.
                let saved = full ? AlignedBuffer<Float>(count: llama.layout.parameterCount) : nil
                saved?.pointer.update(from: llama.weights, count: llama.layout.parameterCount)
                var phases: [String: [Double]] = ["forward": [], "head": [], "backward": [], "optimizer": []]
                var loss = 0.0
                var sgemmSamples: [Double] = []
                let weight = 1 / Float(scoredRows)
                var stepSeconds: [Double] = []
                for _ in 0...repeats {  // the first step is a warm-up, left out of every median
                    let start = Bench.now()
                    var t = start
                    func lap(_ name: String) { let now = Bench.now(); phases[name]!.append(now - t); t = now }
                    parameters.zeroGradients()
                    let tape = try CLI.orExit { try llama.trainingForward(requests, recompute: recompute) }
                    lap("forward")
                    let head = llama.lmHeadForwardBackward(tape, computeEntropy: false,
                                                           gradients: full ? parameters.gradients : nil) { _, _, _ in (-weight, 0) }
                    loss = -head.logProbs.reduce(0.0) { $0 + Double($1) } / Double(scoredRows)
                    lap("head")
                    llama.backward(tape, headInputGradient: head.headInputGradient, into: full ? parameters.gradients : nil,
                                   adapterGradients: full ? nil : parameters.gradients)
                    lap("backward")
                    _ = parameters.clipGradients(maxNorm: 1)
                    optimizer.update(parameters, learningRate: 1e-5)
                    lap("optimizer")
                    stepSeconds.append(Bench.now() - start)
                    // The sgemm reference right after each step, so both see the same machine load.
                    sgemmSamples.append(Bench.sgemmReference(config, rows: sequences * tokens, scoredRows: scoredRows, repeats: 1))
                }
                let seconds = Bench.median(Array(stepSeconds.dropFirst()))
                let sgemm = Bench.median(Array(sgemmSamples.dropFirst()))
                if let saved { llama.weights.update(from: saved.pointer, count: llama.layout.parameterCount) }
                llama.adapters = nil
                let flops = (full ? 3 : 2) * forwardFlops
                let gflops = flops / seconds / 1e9
                var line: [String: Any] = [
                    "bench": "train", "mode": mode, "threads": threadCount, "openblas_core": Gemm.blasCoreName,
                    "sequences": sequences, "tokens_per_sequence": tokens, "recompute": recompute,
                    "trainable_parameters": parameters.count, "repeats": repeats, "seconds": Bench.round(seconds, 4),
                    "tokens_per_s": Bench.round(Double(sequences * tokens) / seconds),
                    "gflop_per_step": Bench.round(flops / 1e9, 1), "gflops": Bench.round(gflops),
                    "sgemm_gflops": Bench.round(sgemm), "fraction_of_sgemm": Bench.round(gflops / sgemm, 3),
                    "loss": Bench.round(loss, 3),
                ]
                if !full { line["lora_rank"] = loraRank }
                for (name, values) in phases {
                    line["\(name)_s"] = Bench.round(Bench.median(Array(values.dropFirst())), 4)  // the warm-up step left out
                }
                Bench.emit(line)
            }
        }
    }
}
