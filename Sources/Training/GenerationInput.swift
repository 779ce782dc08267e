import Foundation
import ModelFiles
import Transformer

/// `srppo generate`'s input: JSONL lines as generation requests.
public enum GenerationInput {
    /// One request per line, in order: the prompt as "prompt_ids", or "prompt" or chat "messages"
    /// encoded by `encoder`; line i uses the line's own "seed", else `firstSeed` + i. Every request
    /// is checked against `config`.
    public static func requests(_ lines: [JSONLines.Line], config: LlamaConfig, encoder: RecordEncoder?, maxNewTokens: Int,
                                sampling: SamplingParameters, firstSeed: UInt64, endTokens: Set<Int32>,
                                stopSequences: [[Int32]]) throws -> [GenerationRequest] {
        try lines.enumerated().map { index, line in
            let record = try line.decode(DataRecord.self)
            let options = try line.decode(LineOptions.self)
            let prompt: [Int32]
            if let ids = record.promptIDs {
                prompt = ids
            } else {
                guard record.prompt != nil || record.messages != nil else {
                    throw line.error("missing field: needs \"prompt_ids\", \"prompt\" or \"messages\"")
                }
                guard let encoder else { throw line.error("text prompts need a tokenizer, and this model has none: use \"prompt_ids\"") }
                do { prompt = try encoder.encodePrompt(record) } catch { throw line.error("\(error)") }
            }
            let request = GenerationRequest(prompt: prompt, maxNewTokens: maxNewTokens, sampling: sampling,
                                            seed: options.seed ?? firstSeed &+ UInt64(index), endTokens: endTokens,
                                            stopSequences: stopSequences)
            do { try request.validate(for: config) } catch { throw line.error("\(error)") }
            return request
        }
    }

    /// Per-line settings besides the prompt.
    private struct LineOptions: Decodable {
        var seed: UInt64?

        enum CodingKeys: String, CodingKey { case seed }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            guard c.contains(.seed) else { return }
            guard let value = try? c.decode(UInt64.self, forKey: .seed) else {
                throw DecodingError.typeMismatch(UInt64.self, .init(codingPath: [CodingKeys.seed],
                                                                    debugDescription: "a seed is a whole number from 0 to \(UInt64.max)"))
            }
            seed = value
        }
    }
}
