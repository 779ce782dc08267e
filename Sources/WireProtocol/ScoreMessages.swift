import Foundation
import Reward
import Tokenizer

/// `POST /v1/score`: score responses under the frozen PT and SFT models.
public struct ScoreRequest: Codable, Equatable, Sendable {
    /// Idempotency key chosen by the client (see `WireProtocol.nameProblem` for the characters).
    /// Within one daemon lifetime, a request repeated with the same client and id is answered with the
    /// first answer (marked `"replayed": true`) instead of being computed again; while the first is
    /// still being computed, the repeat waits for it. Reusing an id for different items is an error
    /// (`id_conflict`). Optional: without it every request is computed.
    public var id: String?
    /// Who is asking: the scheduler shares the daemon fairly between clients by this name, and logs
    /// and metrics carry it. Optional; falls back to the `X-SRPPO-Client` header, then to
    /// "pid:<peer pid>".
    public var client: String?
    /// How long the client will wait, in milliseconds from arrival. A request not finished by then is
    /// answered `deadline_exceeded` (its remaining work is dropped). Optional; the daemon's default
    /// applies when absent and its maximum caps it.
    public var deadlineMs: Int?
    /// The responses to score, answered in this order. Items of one request may be computed in
    /// different batches, together with other clients' items; each answer is bit-identical to scoring
    /// the item alone.
    public var items: [ScoreItem]

    enum CodingKeys: String, CodingKey {
        case id, client, deadlineMs = "deadline_ms", items
    }

    public init(id: String? = nil, client: String? = nil, deadlineMs: Int? = nil, items: [ScoreItem]) {
        self.id = id
        self.client = client
        self.deadlineMs = deadlineMs
        self.items = items
    }
}

/// One response to score: token ids of the models' shared vocabulary (`prompt_ids` + `response_ids`),
/// or text encoded by the daemon with the models' tokenizer by the rule `srppo score` uses
/// (`PromptResponseEncoder`): `prompt` + `response` (plain text: the response gets EOS appended),
/// `messages` + `response` (chat: the messages rendered with the chat template and its generation
/// prompt; the response gets the end-of-turn token), or `messages` alone (the final assistant message
/// is the response).
public struct ScoreItem: Codable, Equatable, Sendable {
    /// The context: at least one token (typically BOS and the chat-formatted prompt).
    public var promptIDs: [Int]?
    /// The response whose tokens are scored; ends with an EOS token unless it was cut off. May be
    /// empty (nothing is scored; the reward is 0 and the item counts as truncated).
    public var responseIDs: [Int]?
    /// Text forms (`text_unsupported` when the daemon has no tokenizer).
    public var prompt: String?
    public var response: String?
    public var messages: [ChatMessage]?

    enum CodingKeys: String, CodingKey {
        case promptIDs = "prompt_ids", responseIDs = "response_ids", prompt, response, messages
    }

    public init(promptIDs: [Int], responseIDs: [Int]) {
        self.promptIDs = promptIDs
        self.responseIDs = responseIDs
    }

    /// A plain-text item.
    public init(prompt: String, response: String) {
        self.prompt = prompt
        self.response = response
    }

    /// A chat item; without `response` the final assistant message is the response.
    public init(messages: [ChatMessage], response: String? = nil) {
        self.messages = messages
        self.response = response
    }

    /// Whether the item is given as text (needs the daemon's tokenizer).
    public var isText: Bool { prompt != nil || response != nil || messages != nil }

    /// Token ids are read as JSON numbers and must be integers: a fraction or a number beyond 64-bit
    /// is a decoding error naming the field (Foundation would otherwise call the whole body invalid JSON).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func tokenIDs(_ key: CodingKeys) throws -> [Int]? {
            guard let numbers = try container.decodeIfPresent([Double].self, forKey: key) else { return nil }
            return try numbers.enumerated().map { index, number in
                guard let id = Int(exactly: number) else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: container,
                                                           debugDescription: "element \(index): \(number) is not an integer token id")
                }
                return id
            }
        }
        promptIDs = try tokenIDs(.promptIDs)
        responseIDs = try tokenIDs(.responseIDs)
        prompt = try container.decodeIfPresent(String.self, forKey: .prompt)
        response = try container.decodeIfPresent(String.self, forKey: .response)
        messages = try container.decodeIfPresent([ChatMessage].self, forKey: .messages)
    }
}

/// The answer to `POST /v1/score`.
public struct ScoreResponse: Codable, Equatable, Sendable {
    public var version: Int
    /// The request's `id`, when it had one.
    public var id: String?
    /// The client name the request was scheduled under.
    public var client: String
    /// The models every result of this answer was computed with (a reload never splits a request).
    public var models: ModelPairIdentity
    /// One result per request item, in order.
    public var results: [ScoreResult]
    /// True when this is the stored answer of an earlier request with the same client and id.
    public var replayed: Bool
    /// Milliseconds from arrival until the first item started computing, and until the answer was ready.
    public var queueMs: Double
    public var totalMs: Double

    enum CodingKeys: String, CodingKey {
        case version, id, client, models, results, replayed, queueMs = "queue_ms", totalMs = "total_ms"
    }

    public init(id: String?, client: String, models: ModelPairIdentity, results: [ScoreResult], replayed: Bool = false,
                queueMs: Double, totalMs: Double) {
        version = WireProtocol.version
        self.id = id
        self.client = client
        self.models = models
        self.results = results
        self.replayed = replayed
        self.queueMs = queueMs
        self.totalMs = totalMs
    }
}

/// Scores of one item.
public struct ScoreResult: Codable, Equatable, Sendable {
    /// `pt_logprobs[i]` = log p_PT(response[i] | prompt, response[<i]), fp32 as the engine computes it
    /// (the JSON number is the shortest decimal that reads back to the same float32).
    public var ptLogprobs: [Float]
    /// The same under SFT.
    public var sftLogprobs: [Float]
    /// The coherent reward Σ_i (sft_logprobs[i] − pt_logprobs[i]), summed in float64 over the whole
    /// response including its final EOS: the value PPO places on the EOS token. Exactly 0 when PT and
    /// SFT are the same image.
    public var reward: Double
    /// The response does not end with one of the model's EOS tokens (it was cut off, or is empty): PPO
    /// gives it the truncation treatment instead of `reward`.
    public var truncated: Bool
    /// Number of response tokens (the length of both log-prob lists).
    public var n: Int
    /// For an item given as text: the token ids the daemon encoded it to (absent for id items).
    public var promptIDs: [Int]?
    public var responseIDs: [Int]?

    enum CodingKeys: String, CodingKey {
        case ptLogprobs = "pt_logprobs", sftLogprobs = "sft_logprobs", reward, truncated, n
        case promptIDs = "prompt_ids", responseIDs = "response_ids"
    }

    public init(ptLogprobs: [Float], sftLogprobs: [Float], truncated: Bool) {
        precondition(ptLogprobs.count == sftLogprobs.count, "log-prob lists differ in length")
        self.ptLogprobs = ptLogprobs
        self.sftLogprobs = sftLogprobs
        reward = Self.coherentReward(pt: ptLogprobs, sft: sftLogprobs)
        self.truncated = truncated
        n = ptLogprobs.count
    }

    /// Σ (sft − pt) in float64: the PPO trainer's sum (`CoherentReward`), so both agree to the bit.
    public static func coherentReward(pt: [Float], sft: [Float]) -> Double {
        CoherentReward().compute(sft: sft, pt: pt, endedWithEOS: true).sum
    }
}

/// `POST /v1/tokenize`: exactly one of `text` and `messages`.
public struct TokenizeRequest: Codable, Equatable, Sendable {
    /// Encoded as written: special tokens in the text (`<|im_end|>`) become their ids; no BOS or EOS is added.
    public var text: String?
    /// Rendered with the chat template first (the rendered text is returned too).
    public var messages: [ChatMessage]?
    /// With `messages`: end with the assistant's generation prompt (default false).
    public var addGenerationPrompt: Bool?

    enum CodingKeys: String, CodingKey {
        case text, messages, addGenerationPrompt = "add_generation_prompt"
    }

    public init(text: String? = nil, messages: [ChatMessage]? = nil, addGenerationPrompt: Bool? = nil) {
        self.text = text
        self.messages = messages
        self.addGenerationPrompt = addGenerationPrompt
    }
}

public struct TokenizeResponse: Codable, Equatable, Sendable {
    public var version: Int
    public var ids: [Int]
    /// For `messages`: the chat template's rendering that was encoded.
    public var text: String?

    public init(ids: [Int], text: String?) {
        version = WireProtocol.version
        self.ids = ids
        self.text = text
    }
}

/// `POST /v1/detokenize`.
public struct DetokenizeRequest: Codable, Equatable, Sendable {
    public var ids: [Int]
    /// Leave special tokens (`<|im_end|>`) out of the text (default false).
    public var skipSpecialTokens: Bool?

    enum CodingKeys: String, CodingKey {
        case ids, skipSpecialTokens = "skip_special_tokens"
    }

    public init(ids: [Int], skipSpecialTokens: Bool? = nil) {
        self.ids = ids
        self.skipSpecialTokens = skipSpecialTokens
    }
}

public struct DetokenizeResponse: Codable, Equatable, Sendable {
    public var version: Int
    /// Decoded as Hugging Face decodes (ill-formed UTF-8 becomes U+FFFD).
    public var text: String

    public init(text: String) {
        version = WireProtocol.version
        self.text = text
    }
}

/// `POST /get_reward`: the request OpenRLHF's remote reward model client sends
/// (`openrlhf.utils.remote_rm_utils.request_api_wrapper`): each `query` is the prompt and the
/// generated response as one decoded string (special tokens kept, padding possibly around it);
/// `prompts[i]` is the prompt text `query[i]` starts with. `labels` (and any other field) is accepted
/// and ignored.
public struct RemoteRewardRequest: Codable, Equatable, Sendable {
    public var query: [String]
    public var prompts: [String]?

    public init(query: [String], prompts: [String]?) {
        self.query = query
        self.prompts = prompts
    }
}

/// The answer to `POST /get_reward`, in the shape OpenRLHF reads.
public struct RemoteRewardResponse: Codable, Equatable, Sendable {
    /// Per query: the coherent reward when the response ended with EOS, else minus the daemon's
    /// truncation penalty (the PPO trainer's default treatment).
    public var rewards: [Double]
    /// Per query: the raw coherent reward Σ (log p_SFT − log p_PT), truncated or not.
    public var scores: [Double]
    /// Per query, for the trainer's logs: `coherent_reward`, `truncated` (0/1), `response_tokens`.
    public var extraLogs: [String: [Double]]

    enum CodingKeys: String, CodingKey {
        case rewards, scores, extraLogs = "extra_logs"
    }

    public init(rewards: [Double], scores: [Double], extraLogs: [String: [Double]]) {
        self.rewards = rewards
        self.scores = scores
        self.extraLogs = extraLogs
    }

    /// The body as OpenRLHF needs it: every number written as a float (`0.0`, `-1.0`, never `0`,
    /// `-1`), keys sorted. Python's json module reads `-1` as an int; OpenRLHF turns the lists into
    /// torch tensors, whose dtype follows the Python values (all ints: int64), and its group baselines
    /// (`rewards.mean()`, `.std()`) refuse integer tensors. JSONEncoder writes whole doubles without
    /// a fraction, hence this writer. A non-finite value has no JSON form: `EncodingError`.
    public func jsonData() throws -> Data {
        func number(_ value: Double) throws -> String {
            guard value.isFinite else {
                throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(value) has no JSON form"))
            }
            return "\(value)"  // Swift's shortest round-trip form always has a "." or an exponent: 0.0, -1.0, 1e-05
        }
        func list(_ values: [Double]) throws -> String { "[" + (try values.map(number)).joined(separator: ",") + "]" }
        func key(_ name: String) throws -> String { String(decoding: try JSONEncoder().encode(name), as: UTF8.self) }
        let logs = try extraLogs.keys.sorted().map { "\(try key($0)):\(try list(extraLogs[$0]!))" }
        let body = "{\"extra_logs\":{\(logs.joined(separator: ","))},\"rewards\":\(try list(rewards)),\"scores\":\(try list(scores))}"
        return Data(body.utf8)
    }
}
