import ModelFiles

extension TokenizerDefinition {
    /// Reads llama.cpp's tokenizer metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`). Token
    /// types follow llama.cpp: 3 (CONTROL) tokens are special added tokens, 4 (USER_DEFINED) plain
    /// added tokens, as transformers and llama.cpp treat them.
    init(gguf: GGUFFile) throws {
        let reader = GGUFTokenizerReader(file: gguf)
        source = gguf.path
        let model = try reader.string("tokenizer.ggml.model")
        guard model == "gpt2" else { throw TokenizerError.unsupportedModel(source: source, model: model) }
        tokens = try reader.strings("tokenizer.ggml.tokens")
        let mergeTexts = try reader.strings("tokenizer.ggml.merges")
        merges = try mergeTexts.enumerated().map { index, text in
            let parts = text.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.badMerge(source: gguf.path, index: index, merge: text, problem: "expected two tokens separated by one space")
            }
            return Merge(left: String(parts[0]), right: String(parts[1]))
        }

        let preName = try reader.optionalString("tokenizer.ggml.pre") ?? "default"
        guard let kind = PreTokenizerKind(ggufName: preName) else {
            throw TokenizerError.unknownPreTokenizer(source: source, name: preName)
        }
        preTokenizer = kind
        normalizesToNFC = kind.defaultNormalizesToNFC
        ignoresMerges = kind.defaultIgnoresMerges
        // The byte-level tokenizers llama.cpp converts have no unknown token in their BPE model.
        missingByteTokenId = nil
        fusesMissingBytes = false
        if try reader.optionalBool("tokenizer.ggml.add_space_prefix") == true {
            throw TokenizerError.unsupported(source: source, feature: "tokenizer.ggml.add_space_prefix = true on a byte-level tokenizer")
        }

        addedTokens = []
        if let types = try reader.optionalIntegers("tokenizer.ggml.token_type") {
            guard types.count == tokens.count else {
                throw TokenizerError.badField(source: source, field: "tokenizer.ggml.token_type",
                                              problem: "\(types.count) types for \(tokens.count) tokens")
            }
            for (id, type) in types.enumerated() where type == 3 || type == 4 {
                addedTokens.append(AddedToken(id: id, content: tokens[id], special: type == 3))
            }
        }
        bosTokenId = try reader.optionalInteger("tokenizer.ggml.bos_token_id")
        eosTokenId = try reader.optionalInteger("tokenizer.ggml.eos_token_id")
        padTokenId = try reader.optionalInteger("tokenizer.ggml.padding_token_id")
        unknownTokenId = try reader.optionalInteger("tokenizer.ggml.unknown_token_id")
        endOfTurnTokenId = try reader.optionalInteger("tokenizer.ggml.eot_token_id")
        addsBOS = try reader.optionalBool("tokenizer.ggml.add_bos_token") ?? false
        chatTemplate = try reader.optionalString("tokenizer.chat_template")
        let architecture = try reader.optionalString("general.architecture")
        maxLength = try architecture.flatMap { try reader.optionalInteger("\($0).context_length") }
        deriveEndOfTurnFromChatTemplate()
    }
}

/// Typed reads of GGUF metadata that fail with a `TokenizerError` naming the key.
private struct GGUFTokenizerReader {
    let file: GGUFFile

    private func bad(_ key: String, _ problem: String) -> TokenizerError {
        .badField(source: file.path, field: key, problem: problem)
    }

    func string(_ key: String) throws -> String {
        guard let value = try optionalString(key) else { throw TokenizerError.missingField(source: file.path, field: key) }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = file.metadata[key] else { return nil }
        guard let text = value.string else { throw bad(key, "expected a string") }
        return text
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let value = file.metadata[key] else { return nil }
        guard let flag = value.bool else { throw bad(key, "expected a bool") }
        return flag
    }

    func optionalInteger(_ key: String) throws -> Int? {
        guard let value = file.metadata[key] else { return nil }
        guard let number = value.integer else { throw bad(key, "expected an integer") }
        return number
    }

    func strings(_ key: String) throws -> [String] {
        guard let value = file.metadata[key] else { throw TokenizerError.missingField(source: file.path, field: key) }
        guard let items = value.array else { throw bad(key, "expected an array of strings") }
        return try items.enumerated().map { index, item in
            guard let text = item.string else { throw bad(key, "element \(index) is not a string") }
            return text
        }
    }

    func optionalIntegers(_ key: String) throws -> [Int]? {
        guard let value = file.metadata[key] else { return nil }
        guard let items = value.array else { throw bad(key, "expected an array of integers") }
        return try items.enumerated().map { index, item in
            guard let number = item.integer else { throw bad(key, "element \(index) is not an integer") }
            return number
        }
    }
}
