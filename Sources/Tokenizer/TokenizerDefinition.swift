/// Everything that defines a byte-level BPE tokenizer, as read from a GGUF file or a Hugging Face
/// tokenizer.json, before `BPETokenizer` compiles it into lookup tables. Also what is written back out.
struct TokenizerDefinition: Sendable {
    struct Merge: Sendable, Equatable {
        var left: String
        var right: String
    }

    /// A token matched as a whole wherever its text appears (before pre-tokenization). Special ones
    /// are matched first and dropped by `decode(_:skippingSpecialTokens: true)`.
    struct AddedToken: Sendable, Equatable {
        var id: Int
        var content: String
        var special: Bool
    }

    /// File or model the definition came from, for error messages.
    var source: String
    /// Tokens in byte-level spelling, indexed by id. Added tokens appear here too, as their content.
    var tokens: [String]
    /// Merge rules in rank order.
    var merges: [Merge]
    var addedTokens: [AddedToken]
    var preTokenizer: PreTokenizerKind
    /// Unicode NFC before pre-tokenization (Qwen2's tokenizer.json has it).
    var normalizesToNFC: Bool
    var ignoresMerges: Bool
    /// The BPE model's unknown token: stands for a byte whose character is not in the vocabulary.
    /// Without one, such bytes are dropped (SmolLM2's vocabulary lacks 21 of the 256 bytes).
    var missingByteTokenId: Int?
    /// Whether a run of missing bytes becomes one unknown token (`fuse_unk`).
    var fusesMissingBytes: Bool
    var bosTokenId: Int?
    var eosTokenId: Int?
    var padTokenId: Int?
    var unknownTokenId: Int?
    var endOfTurnTokenId: Int?
    /// Whether the model expects BOS before every text (GGUF `add_bos_token`; LLaMA-3 true, SmolLM2 false).
    var addsBOS: Bool
    /// The Jinja chat template shipped with the model, if any.
    var chatTemplate: String?
    /// `model_max_length` for tokenizer_config.json (the model's context length when known).
    var maxLength: Int?

    /// Checks what the loaders cannot check field by field: ids in range, added tokens consistent.
    func validate() throws {
        guard !tokens.isEmpty else { throw TokenizerError.badField(source: source, field: "tokens", problem: "the vocabulary is empty") }
        guard tokens.count < Int(Int32.max) else {
            throw TokenizerError.badField(source: source, field: "tokens", problem: "\(tokens.count) tokens is too many")
        }
        for (name, id) in [("bos", bosTokenId), ("eos", eosTokenId), ("padding", padTokenId),
                           ("unknown", unknownTokenId), ("end-of-turn", endOfTurnTokenId),
                           ("model.unk_token", missingByteTokenId)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw TokenizerError.badField(source: source, field: "\(name) token id",
                                              problem: "\(id) is outside the vocabulary of \(tokens.count) tokens")
            }
        }
        for added in addedTokens {
            guard (0..<tokens.count).contains(added.id) else {
                throw TokenizerError.badToken(source: source, id: added.id, problem: "added token is outside the vocabulary of \(tokens.count) tokens")
            }
            guard !added.content.isEmpty else {
                throw TokenizerError.badToken(source: source, id: added.id, problem: "added token has empty content")
            }
        }
    }

    /// Sets the end-of-turn token from the chat template when the file named none: the id of the
    /// recognized template's turn-closing token.
    mutating func deriveEndOfTurnFromChatTemplate() {
        guard endOfTurnTokenId == nil, let chatTemplate,
              let template = try? ChatTemplate(jinja: chatTemplate, origin: source) else { return }
        endOfTurnTokenId = addedTokens.first { $0.content == template.endOfTurn }?.id
    }

    /// Text of a token id, when there is one.
    func text(of id: Int?) -> String? {
        guard let id, tokens.indices.contains(id) else { return nil }
        return tokens[id]
    }
}
