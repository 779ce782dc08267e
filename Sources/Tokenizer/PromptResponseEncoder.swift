/// The one rule by which text becomes (prompt ids, response ids), shared by SFT, PPO and scoring so a
/// response is scored exactly as it was trained:
///
/// - plain text `{"prompt", "response"}`: prompt = encode(prompt), after BOS when the model wants
///   one (LLaMA-3; not SmolLM2); response = encode(response) + [EOS]
/// - chat `{"messages", "response"}`: prompt = encode(template(messages, add_generation_prompt)), the
///   template writing any BOS itself;
///   response = encode(response) + [the template's end-of-turn token], e.g. `<|im_end|>` for ChatML
///
/// Prompt and response are encoded separately (never as one string), so the response's first token
/// does not depend on how the prompt ends. The response text goes in as written (the template's
/// trimming, if any, applies to conversation messages only).
public struct PromptResponseEncoder: Sendable {
    public let tokenizer: BPETokenizer
    private let template: Result<ChatTemplate, TokenizerError>

    /// Uses the chat template in `chatTemplateFile`, or else the model's own. A model whose template
    /// is missing or unknown still encodes plain text; chat input then fails with that error.
    public init(tokenizer: BPETokenizer, chatTemplateFile: String? = nil) throws {
        self.tokenizer = tokenizer
        if let chatTemplateFile {
            template = .success(try ChatTemplate(contentsOfFile: chatTemplateFile, tokenizer: tokenizer))
        } else {
            do {
                template = .success(try ChatTemplate(tokenizer: tokenizer))
            } catch let error as TokenizerError {
                template = .failure(error)
            }
        }
    }

    /// The chat template, or the reason there is none.
    public func chatTemplate() throws -> ChatTemplate { try template.get() }

    public func encodePrompt(_ text: String) -> [Int32] {
        let bos = tokenizer.addsBOS ? tokenizer.bosTokenId.map { [Int32($0)] } ?? [] : []
        return bos + tokenizer.encode(text)
    }

    public func encodePrompt(messages: [ChatMessage]) throws -> [Int32] {
        tokenizer.encode(try chatTemplate().render(messages, addGenerationPrompt: true))
    }

    /// Where a response ends: one rule for sampling, PPO, evaluation, rewards and srppod. The model's
    /// EOS ids, the tokenizer's EOS and end-of-turn tokens, and the chat template's end-of-turn token
    /// when there is a template. Chat SFT closes every response with end-of-turn (`encodeResponse`),
    /// which a base model's vocabulary keeps apart from EOS (Qwen2.5 base, LLaMA-3 base): a policy
    /// that stopped only at EOS would write past the end it learned, and lose its coherent reward.
    public func endTokens(modelEOS: [Int]) -> Set<Int32> {
        var ids = Set(modelEOS.map(Int32.init))
        for id in [tokenizer.eosTokenId, tokenizer.endOfTurnTokenId].compactMap({ $0 }) { ids.insert(Int32(id)) }
        if let template = try? chatTemplate(), let turn = tokenizer.id(ofToken: template.endOfTurn) { ids.insert(turn) }
        return ids
    }

    /// The response followed by EOS (`chat == false`) or by the chat template's end-of-turn token.
    public func encodeResponse(_ text: String, chat: Bool) throws -> [Int32] {
        let closing: Int32
        if chat {
            let template = try chatTemplate()
            guard let id = tokenizer.id(ofToken: template.endOfTurn) else {
                throw TokenizerError.badField(source: tokenizer.source, field: "tokens",
                                              problem: "the chat template's end-of-turn token \(template.endOfTurn) is not in the vocabulary")
            }
            closing = id
        } else {
            guard let eos = tokenizer.eosTokenId else {
                throw TokenizerError.missingField(source: tokenizer.source, field: "eos token id")
            }
            closing = Int32(eos)
        }
        return tokenizer.encode(text) + [closing]
    }
}

extension PromptResponseEncoder {
    /// What is wrong with a text record (`encodePair`'s input), for the caller to report.
    public enum RecordProblem: Error, Equatable, Sendable, CustomStringConvertible {
        /// Neither `prompt` nor `messages`.
        case missingPrompt
        /// No `response`, and `messages` does not end with an assistant message.
        case missingResponse
        /// Both `prompt` and `messages`.
        case promptAndMessages

        public var description: String {
            switch self {
            case .missingPrompt: return "missing field \"prompt\" or \"messages\""
            case .missingResponse: return "missing field \"response\" (or a final assistant message in \"messages\")"
            case .promptAndMessages: return "give \"prompt\" or \"messages\", not both"
            }
        }
    }

    /// A text record as (prompt ids, response ids) by this encoder's rule, the one `srppo score`,
    /// `srppo sft`, `srppo ppo` and srppod share:
    ///
    /// - `prompt` + `response`: plain text;
    /// - `messages` + `response`: chat, the messages rendered with the generation prompt;
    /// - `messages` alone: chat whose final assistant message is the response (the rest the prompt).
    public func encodePair(prompt: String?, messages: [ChatMessage]?, response: String?) throws -> (prompt: [Int32], response: [Int32]) {
        (try encodeRecordPrompt(prompt: prompt, messages: messages, response: response),
         try encodeRecordResponse(messages: messages, response: response))
    }

    /// The prompt part of a record (a prompt-only record needs no response): `messages` without
    /// `response` leave out a final assistant message. `messages` win over `prompt` (callers that
    /// want both refused check `RecordProblem.promptAndMessages` themselves).
    public func encodeRecordPrompt(prompt: String?, messages: [ChatMessage]?, response: String?) throws -> [Int32] {
        if var turns = messages {
            if response == nil, turns.last?.role == "assistant" { turns.removeLast() }
            return try encodePrompt(messages: turns)
        }
        guard let prompt else { throw RecordProblem.missingPrompt }
        return encodePrompt(prompt)
    }

    /// The response part of a record: `response`, else the final assistant message of `messages`;
    /// closed by the end-of-turn token for chat records, EOS otherwise.
    public func encodeRecordResponse(messages: [ChatMessage]?, response: String?) throws -> [Int32] {
        let finalAssistant = messages?.last.flatMap { $0.role == "assistant" ? $0.content : nil }
        guard let text = response ?? finalAssistant else { throw RecordProblem.missingResponse }
        return try encodeResponse(text, chat: messages != nil)
    }
}
