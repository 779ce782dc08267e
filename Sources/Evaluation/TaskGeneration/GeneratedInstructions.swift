/// How the generator writes each IFEval instruction: how it shapes the reference response, which
/// arguments it reads off the finished text (counts are measured, then a threshold is chosen on
/// the right side of them), and how the prompt asks for it (phrasing written for this project).
struct GeneratedInstruction {
    typealias Arguments = [String: JSONValue]

    let id: String
    /// Shapes the draft; returns the arguments fixed at this point.
    var shape: (inout ResponseDraft, TaskSetting, SeededRandom) -> Arguments = { _, _, _ in [:] }
    /// Adds the arguments measured on the rendered response.
    var measure: (String, Arguments, SeededRandom) -> Arguments = { _, arguments, _ in arguments }
    let describe: (Arguments, SeededRandom) -> String
}

/// What every instruction of a task shares.
struct TaskSetting {
    let topic: String
    let request: String
}

extension GeneratedInstruction {
    /// Instructions that decide the whole layout of the response; a task has at most one.
    static let layoutIDs: Set<String> = [
        "length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
        "detectable_format:number_bullet_lists", "detectable_format:multiple_sections",
        "detectable_format:json_format", "detectable_format:constrained_response",
    ]

    /// Pairs that cannot both be followed by one response (or not by the responses written here).
    static let conflicts: [(String, String)] = {
        let json = "detectable_format:json_format", fixed = "detectable_format:constrained_response"
        let nth = "length_constraints:nth_paragraph_first_word", two = "combination:two_responses"
        let lower = "change_case:english_lowercase", upper = "change_case:english_capital"
        let capitalWords = "change_case:capital_word_frequency", sections = "detectable_format:multiple_sections"
        let repeatPrompt = "combination:repeat_prompt", quotation = "startend:quotation"
        var pairs: [(String, String)] = []
        for other in ["detectable_format:title", "detectable_content:postscript", "startend:end_checker", quotation,
                      repeatPrompt, "detectable_format:number_highlighted_sections", upper, capitalWords, two] {
            pairs.append((json, other))
        }
        pairs += [(fixed, lower), (fixed, upper), (fixed, two)]
        pairs += [(lower, upper), (lower, capitalWords), (lower, sections), (upper, sections)]
        pairs += [(nth, "detectable_format:title"), (nth, repeatPrompt), (nth, two), (nth, quotation)]
        pairs += [("detectable_format:number_bullet_lists", two), ("length_constraints:number_paragraphs", two)]
        pairs += [(quotation, repeatPrompt)]
        return pairs
    }()

    static func compatible(_ ids: [String]) -> Bool {
        if ids.filter(layoutIDs.contains).count > 1 { return false }
        return !conflicts.contains { ids.contains($0.0) && ids.contains($0.1) }
    }

    static let all: [String: GeneratedInstruction] = Dictionary(
        uniqueKeysWithValues: (caseAndLength + keywordsAndFormat + contentAndCombination).map { ($0.id, $0) })

    /// "less than" reads "fewer than" in prompts.
    static func phrase(_ relation: Relation) -> String { relation == .lessThan ? "fewer than" : "at least" }

    /// A threshold on the right side of `actual`: above it for "less than", at or below for "at least".
    static func threshold(for actual: Int, _ relation: Relation, slack: Int, random: SeededRandom) -> Int {
        relation == .lessThan ? actual + random.int(in: 1...slack) : max(1, actual - random.int(in: 0...slack))
    }

    static func relation(_ arguments: Arguments, _ name: String) -> Relation {
        if case .string(let text) = arguments[name] { return Relation(rawValue: text) ?? .atLeast }
        return .atLeast
    }

    static func integer(_ arguments: Arguments, _ name: String) -> Int {
        if case .number(let value) = arguments[name] { return Int(value) }
        return 0
    }

    static func string(_ arguments: Arguments, _ name: String) -> String {
        if case .string(let text) = arguments[name] { return text }
        return ""
    }

    static func strings(_ arguments: Arguments, _ name: String) -> [String] {
        if case .array(let items) = arguments[name] {
            return items.compactMap { if case .string(let text) = $0 { return text } else { return nil } }
        }
        return []
    }

    /// "1 time", "3 times".
    static func times(_ count: Int) -> String { count == 1 ? "1 time" : "\(count) times" }

    private static let functionWords: Set<String> = ["about", "there", "their", "which", "often", "usually", "always",
                                                     "think", "something", "answer"]

    /// Lowercase words of five or more letters in `text` that carry content, first occurrence
    /// order, no repeats.
    static func contentWords(_ text: String) -> [String] {
        var seen = Set<String>()
        return text.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init).filter {
            $0.count >= 5 && !functionWords.contains($0) && seen.insert($0).inserted
        }
    }

    /// `"a" and "b"`: quoted words joined without commas, since a task may forbid commas.
    static func list(_ words: [String], joiner: String = "and") -> String {
        words.map { "\"\($0)\"" }.joined(separator: " \(joiner) ")
    }
}

extension GeneratedInstruction {
    static let caseAndLength: [GeneratedInstruction] = [
        GeneratedInstruction(id: "change_case:english_lowercase", shape: { draft, _, _ in
            draft.textCase = .lower
            return [:]
        }, describe: { _, random in
            random.pick(["Write your whole answer in English using only lowercase letters.",
                         "Use English and do not use any capital letters at all."])
        }),
        GeneratedInstruction(id: "change_case:english_capital", shape: { draft, _, _ in
            draft.textCase = .upper
            return [:]
        }, describe: { _, random in
            random.pick(["Write your whole answer in English using only capital letters.",
                         "Your entire reply must be in English and in uppercase."])
        }),
        GeneratedInstruction(id: "change_case:capital_word_frequency", shape: { draft, _, random in
            let relation = random.pick(Relation.allCases)
            if relation == .atLeast || random.chance(0.3) {
                draft.emphatic = random.sample(TaskVocabulary.emphaticSentences, count: random.int(in: 1...2))
            }
            return ["capital_relation": .string(relation.rawValue)]
        }, measure: { text, arguments, random in
            var arguments = arguments
            let relation = relation(arguments, "capital_relation")
            arguments["capital_frequency"] = .int(threshold(for: WordTokenizer.countCapitalWords(text), relation, slack: 2, random: random))
            return arguments
        }, describe: { arguments, _ in
            "Use words written entirely in capital letters \(phrase(relation(arguments, "capital_relation"))) \(times(integer(arguments, "capital_frequency")))."
        }),
        GeneratedInstruction(id: "punctuation:no_comma", describe: { _, random in
            random.pick(["Do not use any commas in your answer.", "Avoid commas completely."])
        }),
        GeneratedInstruction(id: "length_constraints:number_words", measure: { text, _, random in
            let relation = random.pick(Relation.allCases)
            return ["relation": .string(relation.rawValue),
                    "num_words": .int(threshold(for: PythonText.countWords(text), relation, slack: 10, random: random))]
        }, describe: { arguments, _ in
            "Answer with \(phrase(relation(arguments, "relation"))) \(integer(arguments, "num_words")) words."
        }),
        GeneratedInstruction(id: "length_constraints:number_sentences", measure: { text, _, random in
            let relation = random.pick(Relation.allCases)
            let count = SentenceSplitter().countSentences(text)
            return ["relation": .string(relation.rawValue),
                    "num_sentences": .int(threshold(for: count, relation, slack: 2, random: random))]
        }, describe: { arguments, _ in
            "Your answer should have \(phrase(relation(arguments, "relation"))) \(integer(arguments, "num_sentences")) sentences."
        }),
        GeneratedInstruction(id: "length_constraints:number_paragraphs", shape: { draft, _, random in
            let count = random.int(in: 2...4)
            draft.layout = .paragraphs(count: count, separator: "\n\n***\n\n")
            return ["num_paragraphs": .int(count)]
        }, describe: { arguments, _ in
            "Write exactly \(integer(arguments, "num_paragraphs")) paragraphs and separate them with the markdown divider ***."
        }),
        GeneratedInstruction(id: "length_constraints:nth_paragraph_first_word", shape: { draft, _, random in
            let count = random.int(in: 2...4)
            let nth = random.int(in: 1...count)
            let word = random.pick(TaskVocabulary.paragraphOpeners)
            draft.layout = .paragraphs(count: count, separator: "\n\n")
            draft.openingWord = (nth - 1, word)
            return ["num_paragraphs": .int(count), "nth_paragraph": .int(nth), "first_word": .string(word.lowercased())]
        }, describe: { arguments, _ in
            "Write exactly \(integer(arguments, "num_paragraphs")) paragraphs separated by blank lines. "
                + "Paragraph \(integer(arguments, "nth_paragraph")) must begin with the word \"\(string(arguments, "first_word"))\"."
        }),
    ]
}
