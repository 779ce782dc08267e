import Foundation
import ModelFiles
import Reward
import Tokenizer

/// One line of a demonstration or prompt file, in any of the accepted shapes:
/// `{"prompt","response"}`, `{"messages":[…]}` (the last message is the assistant's response when
/// it is a demonstration), `{"messages":[…],"response"}`, or pre-tokenized
/// `{"prompt_ids":[…],"response_ids":[…]}`. Other fields are ignored.
public struct DataRecord: Decodable, Sendable {
    public var prompt: String?
    public var response: String?
    public var messages: [ChatMessage]?
    public var promptIDs: [Int32]?
    public var responseIDs: [Int32]?

    enum CodingKeys: String, CodingKey {
        case prompt, response, messages, promptIDs = "prompt_ids", responseIDs = "response_ids"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prompt = try c.decodeIfPresent(String.self, forKey: .prompt)
        response = try c.decodeIfPresent(String.self, forKey: .response)
        messages = try c.decodeIfPresent([ChatMessage].self, forKey: .messages)
        promptIDs = try Self.tokenIDs(c, .promptIDs)
        responseIDs = try Self.tokenIDs(c, .responseIDs)
    }

    /// Token ids arrive as JSON numbers; anything but a whole number in Int32 range is named.
    private static func tokenIDs(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Int32]? {
        guard let values = try c.decodeIfPresent([Double].self, forKey: key) else { return nil }
        return try values.enumerated().map { i, v in
            guard let id = Int32(exactly: v) else {
                throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: "element \(i) (\(v)) is not an integer token id"))
            }
            return id
        }
    }
}

/// Turns records into token ids: renders chat with the model's template and appends the
/// end-of-turn token to responses. Implemented over the tokenizer by the caller.
public protocol RecordEncoder {
    /// Prompt tokens (what the model is conditioned on).
    func encodePrompt(_ record: DataRecord) throws -> [Int32]
    /// Response tokens, ending with the end-of-turn/EOS token.
    func encodeResponse(_ record: DataRecord) throws -> [Int32]
}

/// A demonstration (or a PPO prompt: an empty response) as token ids, with where it came from for
/// error messages.
public struct TokenizedExample: Codable, Equatable, Sendable {
    public var tokens: TokenPair
    public var source: String

    public init(prompt: [Int32], response: [Int32], source: String) {
        tokens = TokenPair(prompt: prompt, response: response)
        self.source = source
    }
}

/// Reads JSONL data files, checking every line before any training starts.
public enum DataLoader {
    public struct Limits {
        public var vocabularySize: Int
        /// Longest prompt + response, in tokens.
        public var maxLength: Int

        public init(vocabularySize: Int, maxLength: Int) {
            self.vocabularySize = vocabularySize
            self.maxLength = maxLength
        }
    }

    /// Reads the records of a JSONL file (blank lines skipped), with their line numbers.
    public static func records(path: String, maxBytes: Int = 1 << 30) throws -> [(line: Int, record: DataRecord)] {
        let result = try JSONLines.read(path, maxBytes: maxBytes).map { ($0.number, try $0.decode(DataRecord.self)) }
        if result.isEmpty { throw JSONLinesError(source: path, line: nil, problem: "no records") }
        return result
    }

    /// Demonstrations: every record needs a prompt and a non-empty response.
    public static func demonstrations(path: String, encoder: RecordEncoder?, limits: Limits) throws -> [TokenizedExample] {
        try records(path: path).map { line, record in
            func fail(_ problem: String) -> JSONLinesError { JSONLinesError(source: path, line: line, problem: problem) }
            let prompt: [Int32], response: [Int32]
            if let p = record.promptIDs, let r = record.responseIDs {
                prompt = p
                response = r
            } else {
                guard record.prompt != nil || record.messages != nil else {
                    throw fail("missing field: needs \"prompt\" and \"response\", \"messages\", or \"prompt_ids\" and \"response_ids\"")
                }
                if record.response == nil && record.messages?.last?.role != "assistant" {
                    throw fail("missing field \"response\" (or a final assistant message in \"messages\")")
                }
                if let text = record.response ?? record.messages?.last?.content, text.isEmpty { throw fail("empty response") }
                guard let encoder else { throw fail("text data needs a tokenizer, and this model has none: use prompt_ids/response_ids") }
                do {
                    prompt = try encoder.encodePrompt(record)
                    response = try encoder.encodeResponse(record)
                } catch { throw fail("\(error)") }
            }
            try check(prompt: prompt, response: response, limits: limits, fail: fail)
            return TokenizedExample(prompt: prompt, response: response, source: "\(path):\(line)")
        }
    }

    /// Prompts for PPO: every record needs a prompt; a response, if present, is ignored.
    public static func prompts(path: String, encoder: RecordEncoder?, limits: Limits) throws -> [TokenizedExample] {
        try records(path: path).map { line, record in
            func fail(_ problem: String) -> JSONLinesError { JSONLinesError(source: path, line: line, problem: problem) }
            let prompt: [Int32]
            if let p = record.promptIDs {
                prompt = p
            } else {
                guard record.prompt != nil || record.messages != nil else {
                    throw fail("missing field: needs \"prompt\", \"messages\" or \"prompt_ids\"")
                }
                guard let encoder else { throw fail("text data needs a tokenizer, and this model has none: use prompt_ids") }
                var promptOnly = record
                if record.response == nil, record.messages?.last?.role == "assistant" { promptOnly.messages?.removeLast() }
                do { prompt = try encoder.encodePrompt(promptOnly) } catch { throw fail("\(error)") }
            }
            try check(prompt: prompt, response: [], limits: limits, fail: fail, responseRequired: false)
            return TokenizedExample(prompt: prompt, response: [], source: "\(path):\(line)")
        }
    }

    private static func check(prompt: [Int32], response: [Int32], limits: Limits, fail: (String) -> JSONLinesError,
                              responseRequired: Bool = true) throws {
        if prompt.isEmpty { throw fail("empty prompt: at least one prompt token is needed") }
        if responseRequired && response.isEmpty { throw fail("empty response") }
        if let bad = (prompt + response).first(where: { $0 < 0 || Int($0) >= limits.vocabularySize }) {
            throw fail("token id \(bad) is outside the vocabulary (0..<\(limits.vocabularySize))")
        }
        if prompt.count + response.count > limits.maxLength {
            throw fail("too long for the context: \(prompt.count + response.count) tokens, the limit is \(limits.maxLength)")
        }
    }
}
