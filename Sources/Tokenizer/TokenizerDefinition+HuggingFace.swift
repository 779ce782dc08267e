import Foundation

extension TokenizerDefinition {
    /// Reads a Hugging Face tokenizer: tokenizer.json (model, added tokens, normalizer, pre-tokenizer,
    /// post-processor) and tokenizer_config.json (special tokens, chat template; a chat_template.jinja
    /// file beside it is used when the config has none).
    init(huggingFaceFolder folder: String) throws {
        let tokenizerPath = (folder as NSString).appendingPathComponent("tokenizer.json")
        let json = try JSONObject(file: tokenizerPath)
        source = tokenizerPath

        let model = try json.object("model")
        let modelType = try model.optionalString("type") ?? "BPE"
        guard modelType == "BPE" else { throw TokenizerError.unsupportedModel(source: source, model: modelType) }
        let decoderType = try json.optionalObject("decoder")?.optionalString("type")
        guard decoderType == "ByteLevel" else {
            throw TokenizerError.unsupportedModel(source: source, model: "BPE with decoder \(decoderType ?? "null")")
        }
        if try model.optionalBool("byte_fallback") == true {
            throw TokenizerError.unsupported(source: source, feature: "model.byte_fallback = true")
        }
        for field in ["continuing_subword_prefix", "end_of_word_suffix"] where model.has(field) {
            throw TokenizerError.unsupported(source: source, feature: "model.\(field)")
        }
        if let dropout = model.dictionary["dropout"] as? Double, dropout > 0 {
            throw TokenizerError.unsupported(source: source, feature: "model.dropout = \(dropout)")
        }
        ignoresMerges = try model.optionalBool("ignore_merges") ?? false
        fusesMissingBytes = try model.optionalBool("fuse_unk") ?? false
        let unknownToken = try model.optionalString("unk_token")
        normalizesToNFC = try Self.normalizesToNFC(json.optionalObject("normalizer"), source: source)
        preTokenizer = try PreTokenizerKind(huggingFace: json.optionalObject("pre_tokenizer"), source: source)

        let vocab = try model.object("vocab")
        var tokenOfId: [Int: String] = [:]
        for (token, value) in vocab.dictionary {
            guard let id = value as? Int, id >= 0 else { throw vocab.bad(token, "expected a non-negative integer id") }
            tokenOfId[id] = token
        }
        addedTokens = try json.array("added_tokens").enumerated().map { index, item in
            let token = try JSONObject(item, source: tokenizerPath, path: "added_tokens[\(index)]")
            for flag in ["lstrip", "rstrip", "single_word"] where try token.optionalBool(flag) == true {
                throw TokenizerError.unsupported(source: tokenizerPath, feature: "added token option '\(flag)' (added_tokens[\(index)])")
            }
            return AddedToken(id: try token.integer("id"), content: try token.string("content"),
                              special: try token.optionalBool("special") ?? false)
        }
        for added in addedTokens where tokenOfId[added.id] == nil { tokenOfId[added.id] = added.content }
        let count = (tokenOfId.keys.max() ?? -1) + 1
        tokens = try (0..<count).map { id in
            guard let token = tokenOfId[id] else { throw TokenizerError.badToken(source: tokenizerPath, id: id, problem: "no token has this id (ids must be contiguous)") }
            return token
        }
        merges = try model.array("merges").enumerated().map { index, item in
            if let text = item as? String {
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError.badMerge(source: tokenizerPath, index: index, merge: text, problem: "expected two tokens separated by one space")
                }
                return Merge(left: String(parts[0]), right: String(parts[1]))
            }
            guard let pair = item as? [Any], pair.count == 2, let left = pair[0] as? String, let right = pair[1] as? String else {
                throw TokenizerError.badMerge(source: tokenizerPath, index: index, merge: "\(item)", problem: "expected \"a b\" or [\"a\", \"b\"]")
            }
            return Merge(left: left, right: right)
        }

        if let unknownToken {
            guard let id = tokens.firstIndex(of: unknownToken) else { throw model.bad("unk_token", "'\(unknownToken)' is not in the vocabulary") }
            missingByteTokenId = id
        } else {
            missingByteTokenId = nil
        }

        let configPath = (folder as NSString).appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configPath) ? try JSONObject(file: configPath) : nil
        let idOf = Dictionary(tokens.enumerated().map { ($1, $0) }, uniquingKeysWith: { _, last in last })
        func specialId(_ key: String) throws -> Int? {
            guard let config, let content = try config.optionalTokenContent(key) else { return nil }
            guard let id = idOf[content] else { throw config.bad(key, "'\(content)' is not in the vocabulary") }
            return id
        }
        bosTokenId = try specialId("bos_token")
        eosTokenId = try specialId("eos_token")
        padTokenId = try specialId("pad_token")
        unknownTokenId = try specialId("unk_token")
        endOfTurnTokenId = nil
        addsBOS = try config?.optionalBool("add_bos_token") ?? Self.postProcessorAddsBOS(json.optionalObject("post_processor"))
        chatTemplate = try config?.optionalChatTemplate()
        if chatTemplate == nil {
            let templatePath = (folder as NSString).appendingPathComponent("chat_template.jinja")
            chatTemplate = FileManager.default.contents(atPath: templatePath).map { String(decoding: $0, as: UTF8.self) }
        }
        // Often a float such as 1e30 meaning "no limit": only a plausible integer is kept.
        maxLength = (config?.dictionary["model_max_length"] as? Int).flatMap { $0 > 0 && $0 < 1 << 40 ? $0 : nil }
        deriveEndOfTurnFromChatTemplate()
    }

    private static func normalizesToNFC(_ normalizer: JSONObject?, source: String) throws -> Bool {
        guard let normalizer else { return false }
        let type = try normalizer.optionalString("type")
        if type == "NFC" { return true }
        if type == "Sequence", try normalizer.array("normalizers").isEmpty { return false }
        throw TokenizerError.unsupported(source: source, feature: "normalizer \(type ?? "?") (only NFC or none)")
    }

    /// A TemplateProcessing post-processor whose single-sequence template starts with a special token.
    private static func postProcessorAddsBOS(_ processor: JSONObject?) throws -> Bool {
        guard let processor, try processor.optionalString("type") == "TemplateProcessing",
              let first = try processor.array("single").first as? [String: Any] else { return false }
        return first["SpecialToken"] != nil
    }
}

extension PreTokenizerKind {
    /// Recognizes the pre-tokenizer section of a tokenizer.json as one of the supported families.
    init(huggingFace section: JSONObject?, source: String) throws {
        guard let section else { throw TokenizerError.unknownPreTokenizer(source: source, name: "null") }
        let steps = try section.optionalString("type") == "Sequence"
            ? try section.array("pretokenizers").enumerated().map { try JSONObject($1, source: source, path: "pre_tokenizer.pretokenizers[\($0)]") }
            : [section]
        let description = try steps.map { try $0.optionalString("type") ?? "?" }.joined(separator: "+")
        func byteLevel(_ step: JSONObject, usesRegex: Bool) throws -> Bool {
            try step.optionalString("type") == "ByteLevel" && (try step.optionalBool("use_regex") ?? true) == usesRegex
                && (try step.optionalBool("add_prefix_space") ?? false) == false
        }
        switch steps.count {
        case 1 where try byteLevel(steps[0], usesRegex: true):
            self = .gpt2
        case 2 where try steps[0].optionalString("type") == "Digits" && steps[0].optionalBool("individual_digits") == true
            && byteLevel(steps[1], usesRegex: true):
            self = .smollm
        case 2 where try steps[0].optionalString("type") == "Split" && byteLevel(steps[1], usesRegex: false):
            let split = steps[0]
            let pattern = try split.optionalObject("pattern")?.optionalString("Regex")
            guard try split.optionalString("behavior") == "Isolated", try split.optionalBool("invert") != true,
                  let pattern, let kind = Self.splitPatterns[pattern] else {
                throw TokenizerError.unknownPreTokenizer(source: source, name: "Split(\(pattern ?? "?"))+ByteLevel")
            }
            self = kind
        default:
            throw TokenizerError.unknownPreTokenizer(source: source, name: description)
        }
    }

    /// The Split regexes of LLaMA-3's and Qwen2's tokenizer.json.
    static let splitPatterns: [String: PreTokenizerKind] = [
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .llama3,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .qwen2,
    ]
}
