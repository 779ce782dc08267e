import Foundation

/// Byte-level BPE tokenizer (GPT-2 style, as SmolLM2, LLaMA-3 and Qwen2 use), giving the same ids as
/// Hugging Face `tokenizers` for the same definition. Immutable after loading; safe to share between
/// threads (each `encode` call uses its own scratch memory).
///
///     let tokenizer = try BPETokenizer(modelPath: "SmolLM2-135M-Instruct.Q4_1.gguf")
///     let ids = tokenizer.encode("Hello<|im_end|>")   // [19556, 2]
///     tokenizer.decode(ids)                           // "Hello<|im_end|>"
public final class BPETokenizer: Sendable {
    package let definition: TokenizerDefinition

    public var bosTokenId: Int? { definition.bosTokenId }
    public var eosTokenId: Int? { definition.eosTokenId }
    public var padTokenId: Int? { definition.padTokenId }
    public var unknownTokenId: Int? { definition.unknownTokenId }
    /// The token that closes a chat turn (`<|im_end|>`, `<|eot_id|>`), from the GGUF metadata or the
    /// model's recognized chat template.
    public var endOfTurnTokenId: Int? { definition.endOfTurnTokenId }
    public var vocabularySize: Int { definition.tokens.count }
    /// Whether the model expects a BOS token before text (`encode` never adds one itself).
    public var addsBOS: Bool { definition.addsBOS }
    public var preTokenizer: PreTokenizerKind { definition.preTokenizer }
    /// The model's Jinja chat template, if it ships one.
    public var chatTemplateSource: String? { definition.chatTemplate }
    /// Where the tokenizer was loaded from.
    public var source: String { definition.source }

    private let merger: BytePairMerger
    private let specialTokens: AddedTokenMatcher
    private let otherAddedTokens: AddedTokenMatcher
    /// Pieces that encode as one token, found without merging.
    private let singleTokenPieces: PieceTable
    /// Bytes each id decodes to: `tokenBytes[tokenByteStarts[id]..<tokenByteStarts[id + 1]]`.
    private let tokenBytes: [UInt8]
    private let tokenByteStarts: [Int]
    private let kinds: [TokenKind]
    private let idOfToken: [String: Int32]

    enum TokenKind: UInt8, Sendable {
        case ordinary, added, special
    }

    package init(definition: TokenizerDefinition) throws {
        try definition.validate()
        self.definition = definition
        let source = definition.source

        var ids: [String: Int32] = [:]
        ids.reserveCapacity(definition.tokens.count)
        for (id, token) in definition.tokens.enumerated() { ids[token] = Int32(id) }
        idOfToken = ids

        let byteTokenIds = (0..<256).map { ids[String(ByteLevel.characterOfByte[$0])] ?? -1 }
        var rules: [(left: Int32, right: Int32, joined: Int32)] = []
        rules.reserveCapacity(definition.merges.count)
        for (index, merge) in definition.merges.enumerated() {
            let text = "\(merge.left) \(merge.right)"
            guard let left = ids[merge.left] else { throw TokenizerError.badMerge(source: source, index: index, merge: text, problem: "'\(merge.left)' is not in the vocabulary") }
            guard let right = ids[merge.right] else { throw TokenizerError.badMerge(source: source, index: index, merge: text, problem: "'\(merge.right)' is not in the vocabulary") }
            guard let joined = ids[merge.left + merge.right] else {
                throw TokenizerError.badMerge(source: source, index: index, merge: text, problem: "the joined token '\(merge.left + merge.right)' is not in the vocabulary")
            }
            rules.append((left, right, joined))
        }
        merger = BytePairMerger(merges: MergeTable(rules: rules), byteTokenIds: byteTokenIds,
                                missingByteTokenId: definition.missingByteTokenId.map(Int32.init),
                                fusesMissingBytes: definition.fusesMissingBytes)

        var kinds = [TokenKind](repeating: .ordinary, count: definition.tokens.count)
        for added in definition.addedTokens { kinds[added.id] = added.special ? .special : .added }
        self.kinds = kinds
        specialTokens = AddedTokenMatcher(definition.addedTokens.filter(\.special).map { ($0.content, Int32($0.id)) })
        otherAddedTokens = AddedTokenMatcher(definition.addedTokens.filter { !$0.special }.map { ($0.content, Int32($0.id)) })

        var bytes: [UInt8] = [], starts: [Int] = [0]
        var byteLevelIds: [Int] = []
        for (id, token) in definition.tokens.enumerated() {
            if kinds[id] != .ordinary {
                bytes.append(contentsOf: definition.addedTokens.first { $0.id == id }!.content.utf8)
            } else if let spelled = ByteLevel.bytes(spelledBy: token) {
                bytes.append(contentsOf: spelled)
                byteLevelIds.append(id)
            } else {
                bytes.append(contentsOf: token.utf8)
            }
            starts.append(bytes.count)
        }
        tokenBytes = bytes
        tokenByteStarts = starts
        singleTokenPieces = Self.singleTokenPieces(ids: byteLevelIds, bytes: bytes, starts: starts, merger: merger,
                                                   ignoringMerges: definition.ignoresMerges)
    }

    /// The vocabulary tokens a piece may be looked up as (see `PieceTable`); a later token with the
    /// same bytes replaces an earlier one, as in Hugging Face's vocabulary map.
    private static func singleTokenPieces(ids: [Int], bytes: [UInt8], starts: [Int], merger: BytePairMerger,
                                          ignoringMerges: Bool) -> PieceTable {
        var idOfPiece: [ArraySlice<UInt8>: Int32] = [:]
        let workspace = EncodeWorkspace()
        var merged: [Int32] = []
        for id in ids where starts[id + 1] > starts[id] {
            let piece = bytes[starts[id]..<starts[id + 1]]
            if !ignoringMerges {
                merged.removeAll(keepingCapacity: true)
                piece.withUnsafeBufferPointer {
                    merger.appendTokens(of: $0.baseAddress!, count: $0.count, workspace: workspace, to: &merged)
                }
                guard merged.count == 1, merged[0] == Int32(id) else { continue }
            }
            idOfPiece[piece] = Int32(id)
        }
        return PieceTable(entries: idOfPiece.map { ($0.key, $0.value) })
    }

    // MARK: Encoding

    /// Token ids of `text`. Added and special tokens written in the text (`<|im_end|>`) become their
    /// ids; no BOS or EOS is added.
    public func encode(_ text: String) -> [Int32] {
        var output: [Int32] = []
        output.reserveCapacity(text.utf8.count / 3 + 4)
        let workspace = EncodeWorkspace()
        var text = text
        text.withUTF8 { bytes in
            specialTokens.forEachSegment(of: bytes, token: { output.append($0) }) { segment in
                encodeNormalizing(segment, workspace: workspace, into: &output)
            }
        }
        return output
    }

    /// Text between special tokens: normalize (NFC for Qwen2), then split off the other added tokens.
    private func encodeNormalizing(_ bytes: UnsafeBufferPointer<UInt8>, workspace: EncodeWorkspace, into output: inout [Int32]) {
        guard definition.normalizesToNFC, NFC.mayChange(bytes) else {
            encodeSplittingAddedTokens(bytes, workspace: workspace, into: &output)
            return
        }
        NFC.normalize(bytes).withUnsafeBufferPointer {
            encodeSplittingAddedTokens($0, workspace: workspace, into: &output)
        }
    }

    private func encodeSplittingAddedTokens(_ bytes: UnsafeBufferPointer<UInt8>, workspace: EncodeWorkspace, into output: inout [Int32]) {
        otherAddedTokens.forEachSegment(of: bytes, token: { output.append($0) }) { segment in
            let text = workspace.decode(segment)
            let base = segment.baseAddress!
            text.forEachPiece(definition.preTokenizer) { start, end in
                let from = text.byteOffsets[start], to = text.byteOffsets[end]
                if let id = singleTokenPieces.id(of: base + from, count: to - from) {
                    output.append(id)
                } else {
                    merger.appendTokens(of: base + from, count: to - from, workspace: workspace, to: &output)
                }
            }
        }
    }

    // MARK: Decoding

    /// The text of `ids`, as Hugging Face decodes them: the bytes of ordinary tokens are joined and
    /// read as UTF-8 (each ill-formed sequence becomes U+FFFD), added tokens are copied as written,
    /// ids outside the vocabulary are skipped.
    public func decode(_ ids: [Int32], skippingSpecialTokens: Bool = false) -> String {
        var text = ""
        var pending: [UInt8] = []
        for id in ids {
            switch kind(of: id) {
            case nil: continue
            case .ordinary?: pending.append(contentsOf: bytes(of: id))
            case .special? where skippingSpecialTokens: continue
            case .added?, .special?:
                text += String(decoding: pending, as: UTF8.self)
                pending.removeAll(keepingCapacity: true)
                text += String(decoding: bytes(of: id), as: UTF8.self)
            }
        }
        return text + String(decoding: pending, as: UTF8.self)
    }

    /// A decoder for ids arriving one at a time (generation output).
    public func streamingDecoder(skippingSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skippingSpecialTokens: skippingSpecialTokens)
    }

    func kind(of id: Int32) -> TokenKind? {
        guard id >= 0, Int(id) < kinds.count else { return nil }
        return kinds[Int(id)]
    }

    /// Bytes `id` stands for: the decoded byte-level spelling, or an added token's UTF-8 text.
    func bytes(of id: Int32) -> ArraySlice<UInt8> {
        tokenBytes[tokenByteStarts[Int(id)]..<tokenByteStarts[Int(id) + 1]]
    }

    // MARK: Vocabulary

    /// Id of a token given as its vocabulary text (byte-level spelling, or an added token's content).
    public func id(ofToken token: String) -> Int32? { idOfToken[token] }
}
