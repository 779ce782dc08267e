import ArgumentParser
import Dispatch
import Foundation
import ModelFiles
import Tensor
import Transformer

/// `srppo bench generate`: sampling throughput with the KV cache, one batch size at a time.
struct BenchGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sampling throughput (tokens/s) at several batch sizes.",
        discussion: """
        For each batch size B, generates --new-tokens tokens for each of B prompts of --prompt-tokens \
        random token ids (end tokens ignored, so every sequence runs to full length), --repeats times. \
        One JSON line per batch size with medians: seconds for the whole call (prefill + decode), \
        generated tokens/s (B × new tokens / seconds), prefill seconds (a call generating one token), \
        decode tokens/s (B × (new tokens − 1) / (seconds − prefill seconds)) and ms per decoding step; \
        then one line comparing the largest batch with batch 1.

        Example:
          srppo bench generate --model SmolLM2-135M-Instruct.Q4_1.gguf --threads 2 --batch-sizes 1,8
        """
    )

    @Option(help: "Model: a GGUF file, a safetensors file or a Hugging Face model folder.")
    var model: String

    @Option(help: "Comma-separated batch sizes.")
    var batchSizes: String = "1,8"

    @Option(help: "Prompt length in tokens.")
    var promptTokens: Int = 64

    @Option(help: "New tokens per sequence.")
    var newTokens: Int = 128

    @Option(help: "Timed runs per batch size (after one warm-up run).")
    var repeats: Int = 5

    @Option(help: "Sampling temperature (0: greedy).")
    var temperature: Double = 1

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard promptTokens >= 1, newTokens >= 2 else { throw ValidationError("--prompt-tokens must be at least 1 and --new-tokens at least 2") }
        guard !parsedBatchSizes.isEmpty, parsedBatchSizes.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--batch-sizes must be a comma-separated list of positive integers, got \"\(batchSizes)\"")
        }
    }

    private var parsedBatchSizes: [Int] {
        batchSizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    func run() throws {
        threading.apply()
        let loaded = try CLI.orExit { try ModelLoader.load(path: model) }
        let out = try JSONLines.Writer(path: nil)
        var decodeRates: [Int: Double] = [:]
        for batch in parsedBatchSizes {
            let prompts = (0..<batch).map { s in
                var rng = SeededGenerator(seed: 1000 + UInt64(s))
                return (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(loaded.model.config.vocabSize)) }
            }
            func requests(newTokens: Int) -> [GenerationRequest] {
                prompts.enumerated().map { s, p in
                    GenerationRequest(prompt: p, maxNewTokens: newTokens, sampling: SamplingParameters(temperature: temperature),
                                      seed: UInt64(s), endTokens: [])
                }
            }
            let generator = Generator(model: loaded.model, maxBatch: batch)
            func time(_ r: [GenerationRequest]) throws -> Double {
                let start = DispatchTime.now()
                _ = try generator.generate(r)
                return Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            }
            let full = requests(newTokens: newTokens), first = requests(newTokens: 1)
            _ = try CLI.orExit { try time(full) }
            var totals: [Double] = [], prefills: [Double] = []
            for _ in 0..<repeats {
                totals.append(try CLI.orExit { try time(full) })
                prefills.append(try CLI.orExit { try time(first) })
            }
            let total = Bench.median(totals), prefill = Bench.median(prefills)
            let decodeSeconds = total - prefill
            let decodeRate = Double(batch * (newTokens - 1)) / decodeSeconds
            decodeRates[batch] = decodeRate
            try out.write(["batch": batch, "prompt_tokens": promptTokens, "new_tokens": newTokens, "threads": Parallel.threads,
                           "temperature": temperature, "repeats": repeats, "seconds": total, "seconds_min": totals.min()!,
                           "seconds_max": totals.max()!, "tokens_per_s": Double(batch * newTokens) / total,
                           "prefill_seconds": prefill, "decode_tokens_per_s": decodeRate,
                           "ms_per_step": 1000 * decodeSeconds / Double(newTokens - 1)])
        }
        if let one = decodeRates[1], let largest = parsedBatchSizes.max(), largest > 1, let rate = decodeRates[largest] {
            try out.write(["comparison": "decode tokens/s, batch \(largest) over batch 1", "ratio": rate / one])
        }
    }
}
