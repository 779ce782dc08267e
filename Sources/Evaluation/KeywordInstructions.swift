/// `keywords:*`. As in IFEval, keywords are regular expressions matched case-insensitively
/// (so "cat" also matches inside "category"); forbidden words must match as whole words.
extension InstructionRegistry {
    static let keywordBuilders: [String: InstructionBuilder] = [
        // Every keyword appears somewhere.
        "keywords:existence": { arguments, _ in
            let patterns = try nonEmpty(arguments, "keywords").map { PythonRegex.userPattern($0, ignoreCase: true) }
            return { response in patterns.allSatisfy { $0.matches(response) } }
        },
        // No forbidden word appears as a whole word.
        "keywords:forbidden_words": { arguments, _ in
            let patterns = try nonEmpty(arguments, "forbidden_words").map {
                PythonRegex.userPattern($0, prefix: #"\b"#, suffix: #"\b"#, ignoreCase: true)
            }
            return { response in !patterns.contains { $0.matches(response) } }
        },
        // `keyword` occurs less than / at least `frequency` times (non-overlapping matches).
        "keywords:frequency": { arguments, _ in
            let keyword = PythonText.strip(try arguments.string("keyword"))
            let frequency = try arguments.integer("frequency")
            let relation = try arguments.relation("relation")
            let pattern = PythonRegex.userPattern(keyword, ignoreCase: true)
            return { relation.holds(pattern.count(in: $0), frequency) }
        },
        // The single letter `letter` occurs less than / at least `let_frequency` times, ignoring case.
        "keywords:letter_frequency": { arguments, _ in
            let letter = PythonText.strip(try arguments.string("letter")).lowercased()
            guard letter.unicodeScalars.count == 1, let target = letter.unicodeScalars.first else {
                throw InstructionError.invalidArgument(instructionID: arguments.instructionID, name: "letter",
                                                       problem: "must be a single letter")
            }
            let frequency = try arguments.integer("let_frequency")
            let relation = try arguments.relation("let_relation")
            return { response in
                relation.holds(response.lowercased().unicodeScalars.filter { $0 == target }.count, frequency)
            }
        },
    ]

    private static func nonEmpty(_ arguments: InstructionArguments, _ name: String) throws -> [String] {
        let words = try arguments.strings(name)
        guard !words.isEmpty else {
            throw InstructionError.invalidArgument(instructionID: arguments.instructionID, name: name, problem: "empty list")
        }
        return words
    }
}
