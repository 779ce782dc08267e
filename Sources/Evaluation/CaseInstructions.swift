/// `change_case:*` and `punctuation:no_comma`.
extension InstructionRegistry {
    static let caseBuilders: [String: InstructionBuilder] = [
        // The whole response in lowercase, in English.
        "change_case:english_lowercase": { _, _ in
            { PythonText.isLower($0) && LatinScript.looksEnglish($0) }
        },
        // The whole response in capitals, in English.
        "change_case:english_capital": { _, _ in
            { PythonText.isUpper($0) && LatinScript.looksEnglish($0) }
        },
        // Words in all capitals appear less than / at least `capital_frequency` times.
        "change_case:capital_word_frequency": { arguments, _ in
            let frequency = try arguments.integer("capital_frequency")
            let relation = try arguments.relation("capital_relation")
            return { relation.holds(WordTokenizer.countCapitalWords($0), frequency) }
        },
        "punctuation:no_comma": { _, _ in
            { !$0.contains(",") }
        },
    ]
}

/// IFEval also asks a statistical language identifier (langdetect) whether a lowercase or
/// capitalised response is English. That model is not reproduced here; instead a response counts
/// as English when at least 90% of its letters are Latin letters (or it has no letters, which
/// langdetect cannot classify and IFEval then accepts). English text passes both; text in another
/// Latin-script language passes here but may fail IFEval.
enum LatinScript {
    static func looksEnglish(_ text: String) -> Bool {
        var letters = 0
        var latin = 0
        for scalar in text.unicodeScalars where scalar.properties.isAlphabetic {
            letters += 1
            if scalar.isASCII || (0xC0...0x24F).contains(scalar.value) { latin += 1 }
        }
        return letters == 0 || latin * 10 >= letters * 9
    }
}
