import Foundation

extension BPETokenizer {
    /// Writes tokenizer.json, tokenizer_config.json (special tokens, chat template) and
    /// special_tokens_map.json into `folder` (which must exist), so a checkpoint saved there loads in
    /// transformers and here with the same ids.
    public func writeHuggingFaceFiles(to folder: String) throws {
        let files = try HuggingFaceTokenizerFiles(definition)
        for (name, object) in [("tokenizer.json", files.tokenizer), ("tokenizer_config.json", files.config),
                               ("special_tokens_map.json", files.specialTokensMap)] {
            let path = (folder as NSString).appendingPathComponent(name)
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            guard FileManager.default.createFile(atPath: path, contents: data) else {
                throw TokenizerError.cannotWrite(path: path, reason: "cannot create the file")
            }
        }
    }
}

/// The three JSON documents Hugging Face keeps a tokenizer in, built from a definition.
struct HuggingFaceTokenizerFiles {
    let tokenizer: [String: Any]
    let config: [String: Any]
    let specialTokensMap: [String: Any]

    init(_ definition: TokenizerDefinition) throws {
        var vocab: [String: Int] = [:]
        for (id, token) in definition.tokens.enumerated() {
            if let earlier = vocab.updateValue(id, forKey: token) {
                throw TokenizerError.badToken(source: definition.source, id: id,
                    problem: "same text as token \(earlier); tokenizer.json cannot hold both")
            }
        }
        let null = NSNull()
        let addedTokens: [[String: Any]] = definition.addedTokens.map {
            ["id": $0.id, "content": $0.content, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": $0.special]
        }
        tokenizer = [
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": addedTokens,
            "normalizer": definition.normalizesToNFC ? ["type": "NFC"] : null,
            "pre_tokenizer": Self.preTokenizer(definition.preTokenizer),
            "post_processor": Self.postProcessor(definition),
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": [
                "type": "BPE", "dropout": null, "unk_token": definition.text(of: definition.missingByteTokenId) ?? null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": definition.fusesMissingBytes,
                "byte_fallback": false, "ignore_merges": definition.ignoresMerges,
                "vocab": vocab, "merges": definition.merges.map { "\($0.left) \($0.right)" },
            ] as [String: Any],
        ]

        var specialTokens: [String: Any] = [:]
        for (key, id) in [("bos_token", definition.bosTokenId), ("eos_token", definition.eosTokenId),
                          ("pad_token", definition.padTokenId), ("unk_token", definition.unknownTokenId)] {
            if let text = definition.text(of: id) { specialTokens[key] = text }
        }
        let named = Set(specialTokens.values.compactMap { $0 as? String })
        let additional = definition.addedTokens.filter { $0.special && !named.contains($0.content) }.map(\.content)
        specialTokensMap = specialTokens.merging(["additional_special_tokens": additional]) { current, _ in current }

        var config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": definition.addsBOS,
            "add_eos_token": false,
            "clean_up_tokenization_spaces": false,
            "added_tokens_decoder": Dictionary(uniqueKeysWithValues: definition.addedTokens.map {
                (String($0.id), ["content": $0.content, "lstrip": false, "normalized": false, "rstrip": false,
                                 "single_word": false, "special": $0.special] as [String: Any])
            }),
            "additional_special_tokens": additional,
        ]
        config.merge(specialTokens) { current, _ in current }
        if let template = definition.chatTemplate { config["chat_template"] = template }
        if let maxLength = definition.maxLength { config["model_max_length"] = maxLength }
        self.config = config
    }

    static func preTokenizer(_ kind: PreTokenizerKind) -> [String: Any] {
        func byteLevel(usesRegex: Bool) -> [String: Any] {
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": usesRegex]
        }
        func split(_ kind: PreTokenizerKind) -> [String: Any] {
            let pattern = PreTokenizerKind.splitPatterns.first { $0.value == kind }!.key
            return ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                byteLevel(usesRegex: false),
            ]]
        }
        switch kind {
        case .gpt2:
            return byteLevel(usesRegex: true)
        case .smollm:
            return ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel(usesRegex: true)]]
        case .llama3, .qwen2:
            return split(kind)
        }
    }

    /// BOS before every sequence when the model wants it (LLaMA-3), else nothing added.
    private static func postProcessor(_ definition: TokenizerDefinition) -> Any {
        guard definition.addsBOS, let bosId = definition.bosTokenId, let bos = definition.text(of: bosId) else { return NSNull() }
        func special(_ typeId: Int) -> [String: Any] { ["SpecialToken": ["id": bos, "type_id": typeId]] }
        func sequence(_ name: String, _ typeId: Int) -> [String: Any] { ["Sequence": ["id": name, "type_id": typeId]] }
        return [
            "type": "TemplateProcessing",
            "single": [special(0), sequence("A", 0)],
            "pair": [special(0), sequence("A", 0), special(1), sequence("B", 1)],
            "special_tokens": [bos: ["id": bos, "ids": [bosId], "tokens": [bos]]],
        ] as [String: Any]
    }
}
