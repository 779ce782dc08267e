/// Everything that defines a byte-level BPE tokenizer, as read from a GGUF file or a Hugging Face
/// tokenizer.json, before `BPETokenizer` compiles it into lookup tables. Also what is written back out.
package struct TokenizerDefinition: Sendable {
    package struct Merge: Sendable, Equatable {
        var left: String
        var right: String

        package init(left: String, right: String) {
            self.left = left
            self.right = right
        }
    }

    /// A token matched as a whole wherever its text appears (before pre-tokenization). Special ones
    /// are matched first and dropped by `decode(_:skippingSpecialTokens: true)`.
    package struct AddedToken: Sendable, Equatable {
        var id: Int
        var content: String
        var special: Bool

        package init(id: Int, content: String, special: Bool) {
            self.id = id
            self.content = content
            self.special = special
        }
    }

    /// File or model the definition came from, for error messages.
    package var source: String
    /// Tokens in byte-level spelling, indexed by id. Added tokens appear here too, as their content.
    package var tokens: [String]
    /// Merge rules in rank order.
    package var merges: [Merge]
    package var addedTokens: [AddedToken]
    package var preTokenizer: PreTokenizerKind
    /// Unicode NFC before pre-tokenization (Qwen2's tokenizer.json has it).
    package var normalizesToNFC: Bool
    package var ignoresMerges: Bool
    /// The BPE model's unknown token: stands for a byte whose character is not in the vocabulary.
    /// Without one, such bytes are dropped (SmolLM2's vocabulary lacks 21 of the 256 bytes).
    package var missingByteTokenId: Int?
    /// Whether a run of missing bytes becomes one unknown token (`fuse_unk`).
    package var fusesMissingBytes: Bool
    package var bosTokenId: Int?
    package var eosTokenId: Int?
    package var padTokenId: Int?
    package var unknownTokenId: Int?
    package var endOfTurnTokenId: Int?
    /// Whether the model expects BOS before every text (GGUF `add_bos_token`; LLaMA-3 true, SmolLM2 false).
    package var addsBOS: Bool
    /// The Jinja chat template shipped with the model, if any.
    package var chatTemplate: String?
    /// `model_max_length` for tokenizer_config.json (the model's context length when known).
    package var maxLength: Int?

    package init(source: String, tokens: [String], merges: [Merge], addedTokens: [AddedToken],
                 preTokenizer: PreTokenizerKind, normalizesToNFC: Bool, ignoresMerges: Bool, missingByteTokenId: Int?,
                 fusesMissingBytes: Bool, bosTokenId: Int?, eosTokenId: Int?, padTokenId: Int?, unknownTokenId: Int?,
                 endOfTurnTokenId: Int?, addsBOS: Bool, chatTemplate: String?, maxLength: Int?) {
        self.source = source
        self.tokens = tokens
        self.merges = merges
        self.addedTokens = addedTokens
        self.preTokenizer = preTokenizer
        self.normalizesToNFC = normalizesToNFC
        self.ignoresMerges = ignoresMerges
        self.missingByteTokenId = missingByteTokenId
        self.fusesMissingBytes = fusesMissingBytes
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId
        self.unknownTokenId = unknownTokenId
        self.endOfTurnTokenId = endOfTurnTokenId
        self.addsBOS = addsBOS
        self.chatTemplate = chatTemplate
        self.maxLength = maxLength
    }

    /// Checks what the loaders cannot check field by field: ids in range, added tokens consistent.
    package func validate() throws {
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
    package mutating func deriveEndOfTurnFromChatTemplate() {
        guard endOfTurnTokenId == nil, let chatTemplate,
              let template = try? ChatTemplate(jinja: chatTemplate, origin: source) else { return }
        endOfTurnTokenId = addedTokens.first { $0.content == template.endOfTurn }?.id
    }

    /// Text of a token id, when there is one.
    package func text(of id: Int?) -> String? {
        guard let id, tokens.indices.contains(id) else { return nil }
        return tokens[id]
    }
}
