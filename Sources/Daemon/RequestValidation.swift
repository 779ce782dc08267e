import Foundation
import ModelFiles
import Transformer
import WireProtocol

/// A score request that passed every check: items as the engine takes them.
package struct ValidatedScore {
    package var id: String?
    package var client: String?
    package var deadlineMs: Int?
    package var items: [ScoringRequest]
    package var truncated: [Bool]
    package var tokens: Int
    /// Per item: the ids a text item was encoded to (nil for id items), returned with its result.
    package var encoded: [(prompt: [Int32], response: [Int32])?]
    /// `/get_reward` only, per query: the prompt had lost its beginning (`TextCodec.splitQuery`).
    package var promptCut: [Bool] = []
}

/// Turns a request body into a `ValidatedScore` or the typed error naming what is wrong and where.
package struct RequestValidator {
    package let limits: Limits
    package let vocabSize: Int
    package let eosTokenIDs: Set<Int32>
    package var text: TextCodec?

    package init(limits: Limits, vocabSize: Int, eosTokenIDs: Set<Int32>, text: TextCodec? = nil) {
        self.limits = limits
        self.vocabSize = vocabSize
        self.eosTokenIDs = eosTokenIDs
        self.text = text
    }

    package func validateScore(_ body: Data) throws -> ValidatedScore {
        let request: ScoreRequest = try Self.decode(body, maxDepth: limits.maxJSONDepth)
        if let id = request.id, let problem = WireProtocol.nameProblem(id) {
            throw ErrorResponse(.badRequest, "\"id\" \(problem)", field: "id")
        }
        if let client = request.client, let problem = WireProtocol.nameProblem(client) {
            throw ErrorResponse(.badRequest, "\"client\" \(problem)", field: "client")
        }
        if let deadline = request.deadlineMs, !(1...limits.maxDeadlineMs).contains(deadline) {
            throw ErrorResponse(.badRequest, "\"deadline_ms\" must be 1 to \(limits.maxDeadlineMs), got \(deadline)", field: "deadline_ms")
        }
        guard !request.items.isEmpty else { throw ErrorResponse(.noItems, "\"items\" is empty: nothing to score", field: "items") }
        guard request.items.count <= limits.maxItems else {
            throw ErrorResponse(.tooManyItems, "\(request.items.count) items, at most \(limits.maxItems) per request: split it",
                                field: "items")
        }
        var validated = ValidatedScore(id: request.id, client: request.client, deadlineMs: request.deadlineMs, items: [], truncated: [],
                                       tokens: 0, encoded: [])
        for (index, item) in request.items.enumerated() {
            let path = "items.\(index)"
            if item.isText {
                guard let text else {
                    throw ErrorResponse(.textUnsupported, "\(path): text and chat items need the models' tokenizer, and this daemon has none; send \"prompt_ids\" and \"response_ids\"",
                                        field: path)
                }
                let (prompt, response) = try text.encode(item, at: path)
                try append(prompt: prompt.map(Int.init), response: response.map(Int.init), at: path, to: &validated)
                validated.encoded.append((prompt, response))
            } else {
                guard let promptIDs = item.promptIDs else {
                    throw ErrorResponse(.badRequest, "\(path): missing field \"prompt_ids\"", field: "\(path).prompt_ids")
                }
                guard let responseIDs = item.responseIDs else {
                    throw ErrorResponse(.badRequest, "\(path): missing field \"response_ids\"", field: "\(path).response_ids")
                }
                try append(prompt: promptIDs, response: responseIDs, at: path, to: &validated)
                validated.encoded.append(nil)
            }
        }
        return validated
    }

    /// An OpenRLHF `/get_reward` request: each query split into prompt and response ids. OpenRLHF
    /// sends a whole rollout batch at once and cannot split it, so the limits are the `maxReward…`
    /// ones (the daemon streams the batch through the scheduler in ordinary-sized pieces), and an
    /// empty batch is valid: OpenRLHF sends one to every reward URL past the end of its queries.
    package func validateRemoteReward(_ body: Data) throws -> ValidatedScore {
        let request: RemoteRewardRequest = try Self.decode(body, maxDepth: limits.maxJSONDepth)
        guard let text else {
            throw ErrorResponse(.textUnsupported, "/get_reward needs the models' tokenizer, and this daemon has none")
        }
        if let prompts = request.prompts, prompts.count != request.query.count {
            throw ErrorResponse(.badRequest, "\(request.query.count) queries but \(prompts.count) prompts", field: "prompts")
        }
        guard request.query.count <= limits.maxRewardQueries else {
            throw ErrorResponse(.tooManyItems, "\(request.query.count) queries, at most \(limits.maxRewardQueries) per /get_reward request",
                                field: "query")
        }
        var validated = ValidatedScore(id: nil, client: nil, deadlineMs: nil, items: [], truncated: [], tokens: 0, encoded: [])
        for (index, query) in request.query.enumerated() {
            let path = "query.\(index)"
            let split = try text.splitQuery(query, prompt: request.prompts?[index], at: path)
            // One query is scored within one piece of the stream: it may not exceed a piece.
            let length = split.prompt.count + split.response.count
            guard length <= limits.maxRequestTokens else {
                throw ErrorResponse(.tooLong, "\(path): \(length) tokens, more than max_request_tokens (\(limits.maxRequestTokens))", field: path)
            }
            try append(prompt: split.prompt.map(Int.init), response: split.response.map(Int.init), at: path, tokenLimit: limits.maxRewardTokens,
                       to: &validated)
            validated.encoded.append((split.prompt, split.response))
            validated.promptCut.append(split.promptCut)
        }
        return validated
    }

    private func append(prompt: [Int], response: [Int], at path: String, tokenLimit: Int? = nil,
                        to validated: inout ValidatedScore) throws {
        let (scoring, isTruncated) = try validate(promptIDs: prompt, responseIDs: response, at: path)
        validated.tokens += scoring.tokens.count
        let tokenLimit = tokenLimit ?? limits.maxRequestTokens
        guard validated.tokens <= tokenLimit else {
            throw ErrorResponse(.tooManyTokens, "the items hold more than \(tokenLimit) tokens (limit per request): split it",
                                field: path)
        }
        validated.items.append(scoring)
        validated.truncated.append(isTruncated)
    }

    private func validate(promptIDs: [Int], responseIDs: [Int], at path: String) throws -> (ScoringRequest, truncated: Bool) {
        guard !promptIDs.isEmpty else {
            throw ErrorResponse(.emptyPrompt, "\(path).prompt_ids is empty: at least one context token is needed", field: "\(path).prompt_ids")
        }
        for (name, ids) in [("prompt_ids", promptIDs), ("response_ids", responseIDs)] {
            if let position = ids.firstIndex(where: { $0 < 0 || $0 >= vocabSize }) {
                throw ErrorResponse(.invalidToken, "\(path).\(name)[\(position)]: token id \(ids[position]) is outside the vocabulary (0..<\(vocabSize))",
                                    field: "\(path).\(name).\(position)")
            }
        }
        let length = promptIDs.count + responseIDs.count
        guard length <= limits.maxSequenceTokens else {
            throw ErrorResponse(.tooLong, "\(path): \(length) tokens, more than the model's context of \(limits.maxSequenceTokens)", field: path)
        }
        let response = responseIDs.map(Int32.init)
        let scoring = ScoringRequest(prompt: promptIDs.map(Int32.init), response: response)
        return (scoring, response.last.map { !eosTokenIDs.contains($0) } ?? true)
    }

    /// Decodes a JSON body after checking its nesting, with errors that name the field.
    package static func decode<T: Decodable>(_ body: Data, maxDepth: Int) throws -> T {
        guard !body.isEmpty else { throw ErrorResponse(.badJSON, "the body is empty; expected a JSON object") }
        if let depth = nestingBeyond(maxDepth, in: body) {
            throw ErrorResponse(.tooDeep, "JSON nested \(depth) levels deep; at most \(maxDepth) allowed")
        }
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch {
            let problem = DecodingProblem(error)
            guard error is DecodingError, !problem.isSyntaxError else { throw ErrorResponse(.badJSON, "the body is not valid JSON") }
            throw ErrorResponse(.badRequest, problem.description, field: problem.field)
        }
    }

    /// The depth reached when it exceeds `limit` (nil within it). Counts `[` and `{` outside strings.
    package static func nestingBeyond(_ limit: Int, in body: Data) -> Int? {
        var depth = 0, inString = false, escaped = false
        for byte in body {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return depth }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return nil
    }
}
