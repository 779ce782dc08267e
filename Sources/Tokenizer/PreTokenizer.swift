/// The pre-tokenizers of the supported model families. Each cuts text into the pieces BPE then merges
/// within, exactly as its Hugging Face regex does (Oniguruma: leftmost alternative wins, greedy
/// quantifiers backtrack). The regexes are matched by hand on decoded scalars because they are on
/// every request path and a general regex engine is several times slower.
public enum PreTokenizerKind: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2 = "gpt-2"
    /// SmolLM/StarCoder: every digit is a piece of its own (Digits, individual_digits), then GPT-2's regex.
    case smollm
    /// LLaMA-3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3 = "llama-bpe"
    /// Qwen2: LLaMA-3's regex with single digits (`\p{N}`); its tokenizer normalizes to NFC first.
    case qwen2

    /// `tokenizer.ggml.pre` values (llama.cpp's names) and the family each one means.
    static let ggufNames: [String: PreTokenizerKind] = [
        "default": .gpt2, "gpt-2": .gpt2, "gpt2": .gpt2,
        "smollm": .smollm, "starcoder": .smollm, "refact": .smollm,
        "llama-bpe": .llama3, "llama3": .llama3, "llama-v3": .llama3,
        "qwen2": .qwen2,
    ]

    public static var supportedNames: String { ggufNames.keys.sorted().joined(separator: ", ") }

    package init?(ggufName: String) {
        guard let kind = Self.ggufNames[ggufName] else { return nil }
        self = kind
    }

    /// Whether the model's tokenizer.json has `ignore_merges`: a piece that is a whole vocabulary token
    /// is that token even when the merges would split it differently (LLaMA-3 only).
    var defaultIgnoresMerges: Bool { self == .llama3 }

    /// Whether the family's tokenizer.json normalizes to NFC first (Qwen2 only).
    var defaultNormalizesToNFC: Bool { self == .qwen2 }
}

extension PreTokenizerKind {
    /// The pieces this pre-tokenizer cuts `text` into, before any merge (for tests of the cutting rules).
    package func pieces(of text: String) -> [String] {
        var text = text
        let workspace = EncodeWorkspace()   // owns the memory `scalars` points into
        return withExtendedLifetime(workspace) {
            text.withUTF8 { bytes in
                let scalars = workspace.decode(bytes)
                var result: [String] = []
                scalars.forEachPiece(self) { start, end in
                    let range = scalars.byteOffsets[start]..<scalars.byteOffsets[end]
                    result.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
                }
                return result
            }
        }
    }
}

/// A run of text decoded into scalars and their classes, with each scalar's byte offset (plus one
/// past the end), so pieces found on scalars map back to UTF-8 byte ranges.
struct ScalarText {
    let scalars: UnsafeMutablePointer<UInt32>
    let classes: UnsafeMutablePointer<CharacterClass>
    let byteOffsets: UnsafeMutablePointer<Int>
    let count: Int

    private static let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20
    private static let carriageReturn: UInt32 = 0x0D, lineFeed: UInt32 = 0x0A

    /// Calls `body` with the scalar range of each piece, in order.
    @inline(__always)
    func forEachPiece(_ kind: PreTokenizerKind, _ body: (Int, Int) -> Void) {
        var start = 0
        switch kind {
        case .gpt2:
            while start < count {
                let end = gpt2PieceEnd(from: start, limit: count)
                body(start, end)
                start = end
            }
        case .smollm:
            while start < count {
                if classes[start].contains(.isolatedDigit) {
                    body(start, start + 1)
                    start += 1
                    continue
                }
                var limit = start + 1
                while limit < count && !classes[limit].contains(.isolatedDigit) { limit += 1 }
                while start < limit {
                    let end = gpt2PieceEnd(from: start, limit: limit)
                    body(start, end)
                    start = end
                }
            }
        case .llama3, .qwen2:
            let maxDigits = kind == .llama3 ? 3 : 1
            while start < count {
                let end = llama3PieceEnd(from: start, limit: count, maxDigits: maxDigits)
                body(start, end)
                start = end
            }
        }
    }

    // MARK: The two regex shapes

    private func gpt2PieceEnd(from i: Int, limit: Int) -> Int {
        if scalars[i] == Self.apostrophe, let end = contractionEnd(at: i, limit: limit, foldingCase: false) { return end }
        // ` ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+`: one optional space joins the non-space run after it.
        let j = scalars[i] == Self.space && i + 1 < limit && !classes[i + 1].contains(.whitespace) ? i + 1 : i
        let kind = classes[j]
        if kind.contains(.letter) { return runEnd(from: j, limit: limit, of: .letter) }
        if kind.contains(.number) { return runEnd(from: j, limit: limit, of: .number) }
        if !kind.contains(.whitespace) { return otherRunEnd(from: j, limit: limit) }
        return whitespacePieceEnd(from: i, runEnd: runEnd(from: i, limit: limit, of: .whitespace), limit: limit)
    }

    private func llama3PieceEnd(from i: Int, limit: Int, maxDigits: Int) -> Int {
        let scalar = scalars[i], kind = classes[i]
        if scalar == Self.apostrophe, let end = contractionEnd(at: i, limit: limit, foldingCase: true) { return end }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`: any one non-newline, non-number scalar joins the letters after it.
        if kind.contains(.letter) { return runEnd(from: i, limit: limit, of: .letter) }
        if scalar != Self.carriageReturn && scalar != Self.lineFeed && !kind.contains(.number)
            && i + 1 < limit && classes[i + 1].contains(.letter) {
            return runEnd(from: i + 1, limit: limit, of: .letter)
        }
        if kind.contains(.number) { return min(runEnd(from: i, limit: limit, of: .number), i + maxDigits) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let j = scalar == Self.space && i + 1 < limit && isOther(i + 1) ? i + 1 : i
        if isOther(j) {
            var end = otherRunEnd(from: j, limit: limit)
            while end < limit && (scalars[end] == Self.carriageReturn || scalars[end] == Self.lineFeed) { end += 1 }
            return end
        }
        // `\s*[\r\n]+`: whitespace up to and including the run's last newline.
        let spaceEnd = runEnd(from: i, limit: limit, of: .whitespace)
        var last = spaceEnd - 1
        while last >= i && scalars[last] != Self.lineFeed && scalars[last] != Self.carriageReturn { last -= 1 }
        if last >= i { return last + 1 }
        return whitespacePieceEnd(from: i, runEnd: spaceEnd, limit: limit)
    }

    // MARK: Shared parts

    /// `\s+(?!\S)|\s+` on a whitespace run [i, runEnd): the whole run at the end of the text, else the
    /// run less its last scalar (which then joins the next piece), or the single scalar.
    private func whitespacePieceEnd(from i: Int, runEnd: Int, limit: Int) -> Int {
        if runEnd == limit || runEnd - i == 1 { return runEnd }
        return runEnd - 1
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-insensitive for LLaMA-3/Qwen2 (where Unicode folding also
    /// turns ſ, U+017F, into s).
    private func contractionEnd(at i: Int, limit: Int, foldingCase: Bool) -> Int? {
        guard i + 1 < limit else { return nil }
        let first = folded(scalars[i + 1], foldingCase)
        switch first {
        case 0x73, 0x74, 0x6D, 0x64: return i + 2  // s t m d
        default: break
        }
        guard i + 2 < limit else { return nil }
        let second = folded(scalars[i + 2], foldingCase)
        switch (first, second) {
        case (0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C): return i + 3  // re ve ll
        default: return nil
        }
    }

    @inline(__always)
    private func folded(_ scalar: UInt32, _ foldingCase: Bool) -> UInt32 {
        guard foldingCase else { return scalar }
        if scalar >= 0x41 && scalar <= 0x5A { return scalar + 0x20 }
        return scalar == 0x17F ? 0x73 : scalar
    }

    @inline(__always)
    private func isOther(_ i: Int) -> Bool {
        classes[i].isDisjoint(with: [.letter, .number, .whitespace])
    }

    @inline(__always)
    private func runEnd(from i: Int, limit: Int, of kind: CharacterClass) -> Int {
        var end = i + 1
        while end < limit && classes[end].contains(kind) { end += 1 }
        return end
    }

    @inline(__always)
    private func otherRunEnd(from i: Int, limit: Int) -> Int {
        var end = i + 1
        while end < limit && isOther(end) { end += 1 }
        return end
    }
}
