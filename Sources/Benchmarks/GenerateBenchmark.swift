import Dispatch
import Compute
import Transformer

/// `bench generate`: sampling throughput with the KV cache, one batch size at a time, prefill and
/// decoding told apart by a second call that generates one token.
public struct GenerateBenchmark {
    public struct Settings {
        public var batchSizes: [Int]
        public var promptTokens: Int
        /// New tokens per sequence (at least 2: decoding is what is left after the first).
        public var newTokens: Int
        /// Timed runs per batch size (after one warm-up run).
        public var repeats: Int
        public var temperature: Double

        public init(batchSizes: [Int], promptTokens: Int, newTokens: Int, repeats: Int, temperature: Double) {
            self.batchSizes = batchSizes; self.promptTokens = promptTokens; self.newTokens = newTokens
            self.repeats = repeats; self.temperature = temperature
        }
    }

    public let model: LlamaModel
    public let settings: Settings

    public init(model: LlamaModel, _ settings: Settings) {
        self.model = model
        self.settings = settings
    }

    /// One line per batch size, then one comparing the largest batch with batch 1 (when both ran).
    public func run(emit: Emit) throws {
        let (promptTokens, newTokens, repeats, temperature) = (settings.promptTokens, settings.newTokens, settings.repeats, settings.temperature)
        var decodeRates: [Int: Double] = [:]
        for batch in settings.batchSizes {
            let prompts = (0..<batch).map { s in
                var rng = SeededGenerator(seed: 1000 + UInt64(s))
                return (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(model.config.vocabSize)) }
            }
            // End tokens ignored, so every sequence runs to full length.
            func requests(newTokens: Int) -> [GenerationRequest] {
                prompts.enumerated().map { s, p in
                    GenerationRequest(prompt: p, maxNewTokens: newTokens, sampling: SamplingParameters(temperature: temperature),
                                      seed: UInt64(s), endTokens: [])
                }
            }
            let generator = Generator(model: model, maxBatch: batch)
            func time(_ r: [GenerationRequest]) throws -> Double {
                let start = DispatchTime.now()
                _ = try generator.generate(r)
                return Bench.seconds(from: start)
            }
            let full = requests(newTokens: newTokens), first = requests(newTokens: 1)
            _ = try time(full)
            var totals: [Double] = [], prefills: [Double] = []
            for _ in 0..<repeats {
                totals.append(try time(full))
                prefills.append(try time(first))
            }
            let total = Bench.median(totals), prefill = Bench.median(prefills)
            let decodeSeconds = total - prefill
            let decodeRate = Double(batch * (newTokens - 1)) / decodeSeconds
            decodeRates[batch] = decodeRate
            try emit(["batch": batch, "prompt_tokens": promptTokens, "new_tokens": newTokens, "threads": Parallel.threads,
                      "temperature": temperature, "repeats": repeats, "seconds": total, "seconds_min": totals.min()!,
                      "seconds_max": totals.max()!, "tokens_per_s": Double(batch * newTokens) / total,
                      "prefill_seconds": prefill, "decode_tokens_per_s": decodeRate,
                      "ms_per_step": 1000 * decodeSeconds / Double(newTokens - 1)])
        }
        if let one = decodeRates[1], let largest = settings.batchSizes.max(), largest > 1, let rate = decodeRates[largest] {
            try emit(["comparison": "decode tokens/s, batch \(largest) over batch 1", "ratio": rate / one])
        }
    }
}
