import ModelFiles
import Transformer

/// One line of `score` (and `reward`) input as token ids: given as ids, or encoded from plain text
/// or chat by a `RecordEncoder` (the rule is `PromptResponseEncoder`'s).
public struct ScoreInput {
    public var promptIDs: [Int32]
    public var responseIDs: [Int32]

    public static func parse(_ line: JSONLines.Line, encoder: RecordEncoder? = nil) throws -> ScoreInput {
        let record = try line.decode(DataRecord.self)
        let input: ScoreInput
        switch (record.promptIDs, record.responseIDs) {
        case let (prompt?, response?):
            input = ScoreInput(promptIDs: prompt, responseIDs: response)
        case (nil, nil):
            guard record.prompt != nil || record.messages != nil else {
                throw line.error("missing field: needs \"prompt_ids\" and \"response_ids\", \"prompt\" and \"response\", or \"messages\"")
            }
            guard let encoder else {
                throw line.error("text input needs the model's tokenizer, and none is available: use prompt_ids/response_ids")
            }
            do {
                input = ScoreInput(promptIDs: try encoder.encodePrompt(record), responseIDs: try encoder.encodeResponse(record))
            } catch {
                throw line.error("\(error)")
            }
        default:
            throw line.error("needs both \"prompt_ids\" and \"response_ids\"")
        }
        guard !input.promptIDs.isEmpty else { throw line.error("the prompt is empty: at least one context token is needed") }
        if let bad = (input.promptIDs + input.responseIDs).first(where: { $0 < 0 }) {
            throw line.error("token id \(bad) is negative")
        }
        return input
    }

    /// Every line as a scoring request, in order; `textEncoder` is called once, and only when some
    /// line is text.
    public static func requests(_ lines: [JSONLines.Line], textEncoder: () throws -> RecordEncoder?) throws -> [ScoringRequest] {
        let encoder = try lines.contains(where: isText) ? textEncoder() : nil
        return try lines.map { line in
            let pair = try parse(line, encoder: encoder)
            return ScoringRequest(prompt: pair.promptIDs, response: pair.responseIDs)
        }
    }

    /// Whether a line gives text rather than ids (so needs the tokenizer).
    public static func isText(_ line: JSONLines.Line) -> Bool {
        guard let record = try? line.decode(DataRecord.self) else { return false }
        return record.promptIDs == nil && record.responseIDs == nil
    }
}
