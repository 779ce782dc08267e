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
