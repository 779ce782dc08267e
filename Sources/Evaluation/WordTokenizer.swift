/// Word tokens as NLTK's `word_tokenize` (the improved Treebank tokenizer) splits them, to the
/// extent that matters for IFEval's `change_case:capital_word_frequency`: which runs of letters
/// end up in one token. Punctuation that Treebank splits off becomes its own token, contractions
/// ("n't", "'s", "'ll", ...) are separate tokens, and "cannot"-style words split in two.
/// Periods are split from the end of a word (they have no case, so that never changes a count).
enum WordTokenizer {
    /// Characters that are always tokens of their own.
    private static let separators: Set<Unicode.Scalar> = [
        "\u{AB}", "\u{201C}", "\u{2018}", "\u{201E}", "`", "\u{BB}", "\u{201D}", "\u{2019}", "\"",
        ";", "@", "#", "$", "%", "&", "?", "!", "*", "(", ")", "[", "]", "{", "}", "<", ">",
        "\u{2012}", "\u{2013}", "\u{2014}", "\u{2015}",
    ]
    /// Contractions split from the end of a word, exactly as cased here (Treebank lists these cases).
    private static let contractionSuffixes = ["'ll", "'LL", "'re", "'RE", "'ve", "'VE", "n't", "N'T",
                                              "'s", "'S", "'m", "'M", "'d", "'D"]
    /// Words Treebank splits in two, lowercase, with the length of the first part.
    private static let splitWords: [String: Int] = ["cannot": 3, "gimme": 3, "gonna": 3, "gotta": 3, "lemme": 3,
                                                    "more'n": 4, "wanna": 3, "d'ye": 1, "'tis": 2, "'twas": 2]

    static func tokenize(_ text: String) -> [String] {
        PythonText.splitOnWhitespace(text).flatMap(splitChunk)
    }

    /// The number of tokens that `str.isupper()` accepts.
    static func countCapitalWords(_ text: String) -> Int {
        tokenize(text).filter(PythonText.isUpper).count
    }

    /// Splits one whitespace-free chunk at separators, then each piece at apostrophes and periods.
    private static func splitChunk(_ chunk: String) -> [String] {
        let scalars = Array(chunk.unicodeScalars)
        var pieces: [String] = []
        var current = String.UnicodeScalarView()
        func flush() {
            if !current.isEmpty { pieces += splitWord(String(current)) }
            current = .init()
        }
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            let next = index + 1 < scalars.count ? scalars[index + 1] : nil
            if separators.contains(scalar) {
                flush()
                pieces.append(String(scalar))
            } else if scalar == "-" && next == "-" {
                flush()
                var end = index
                while end < scalars.count && scalars[end] == "-" { end += 1 }
                pieces.append(String(repeating: "-", count: end - index))
                index = end
                continue
            } else if scalar == "." && next == "." {
                flush()
                var end = index
                while end < scalars.count && scalars[end] == "." { end += 1 }
                pieces.append(String(repeating: ".", count: end - index))
                index = end
                continue
            } else if (scalar == "," || scalar == ":") && !(next.map { $0.properties.numericType == .decimal } ?? false) {
                flush()
                pieces.append(String(scalar))
            } else {
                current.append(scalar)
            }
            index += 1
        }
        flush()
        return pieces
    }

    /// Splits a trailing period, a leading quote-apostrophe and contraction suffixes off a word.
    private static func splitWord(_ word: String) -> [String] {
        var word = word
        var trailing: [String] = []
        if word.count > 1 && word.hasSuffix(".") {
            word.removeLast()
            trailing.append(".")
        }
        var leading: [String] = []
        if word.hasPrefix("'") && word.count > 1 && !startsWithContraction(word) {
            word.removeFirst()
            leading.append("'")
        }
        if let parts = splitWords[word.lowercased()] {
            return leading + [String(word.prefix(parts)), String(word.dropFirst(parts))] + trailing
        }
        for suffix in contractionSuffixes where word.hasSuffix(suffix) && word.count > suffix.count {
            let stem = word.dropLast(suffix.count)
            if stem.last != "'" {
                return leading + [String(stem), suffix] + trailing
            }
        }
        if word.hasSuffix("'") && word.count > 1 && !word.dropLast().hasSuffix("'") {
            return leading + [String(word.dropLast()), "'"] + trailing
        }
        return leading + [word] + trailing
    }

    /// A word that begins with a contraction ("'s", "'re", "'t", ...), where Treebank keeps the
    /// apostrophe attached.
    private static func startsWithContraction(_ word: String) -> Bool {
        let rest = word.dropFirst().lowercased()
        for suffix in ["re", "ve", "ll", "m", "t", "s", "d", "n"] where rest.hasPrefix(suffix) {
            let after = rest.dropFirst(suffix.count).unicodeScalars.first
            if after.map({ !PythonText.isWordCharacter($0) }) ?? true { return true }
        }
        return false
    }
}
