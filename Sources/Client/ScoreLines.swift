import ModelFiles
import Reward
import Training
import WireProtocol

extension ScoreItem {
    /// A line of `srppo score` input (ids, plain text or chat) as the daemon takes it: an id line
    /// goes as ids; a text or chat line goes as text, encoded by the daemon with the same rule.
    public init(_ line: JSONLines.Line) throws {
        guard ScoreInput.isText(line) else {
            let pair = try ScoreInput.parse(line)
            self.init(promptIDs: pair.promptIDs.map(Int.init), responseIDs: pair.responseIDs.map(Int.init))
            return
        }
        let record = try line.decode(DataRecord.self)
        self.init(messages: record.messages ?? [], response: record.response)
        if record.messages == nil { messages = nil }
        prompt = record.prompt
    }
}

extension EmbeddedScorer {
    /// The scores of `requests` as the daemon answers them: a response that does not end with one
    /// of `endTokens` was cut off (truncated).
    public func scoreResults(_ requests: [TokenPair], endTokens: Set<Int32>) throws -> [ScoreResult] {
        zip(requests, try score(requests)).map { request, scores in
            ScoreResult(ptLogprobs: scores.pt, sftLogprobs: scores.sft, truncated: !(request.response.last.map(endTokens.contains) ?? false))
        }
    }
}
