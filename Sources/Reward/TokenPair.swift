/// A prompt and its response as token ids: what the coherent reward scores, what SFT trains on, and
/// (with an empty response) what PPO samples after. The project's one (prompt, response) pair: the
/// engine takes it as a `ScoringRequest` (one sequence and where scoring starts, which also serves
/// whole-sequence scoring and prefill), and the daemon's clients send it as a `ScoreItem` (its JSON
/// form, which may carry text instead of ids).
public struct TokenPair: Codable, Equatable, Sendable {
    public var prompt: [Int32]
    public var response: [Int32]

    public init(prompt: [Int32], response: [Int32]) {
        self.prompt = prompt
        self.response = response
    }

    public var tokenCount: Int { prompt.count + response.count }
}
