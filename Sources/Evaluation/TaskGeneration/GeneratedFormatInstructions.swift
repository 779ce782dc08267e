/// The generator's keyword, format, content and combination instructions (see GeneratedInstruction).
extension GeneratedInstruction {
    static let keywordsAndFormat: [GeneratedInstruction] = [
        GeneratedInstruction(id: "keywords:existence", measure: { text, _, random in
            let words = contentWords(text)
            return ["keywords": .strings(random.sample(words, count: min(words.count, random.int(in: 1...2))))]
        }, describe: { arguments, _ in
            "Include the keywords \(list(strings(arguments, "keywords"))) in your answer."
        }),
        GeneratedInstruction(id: "keywords:forbidden_words", measure: { text, _, random in
            let absent = TaskVocabulary.forbiddenCandidates.filter {
                !PythonRegex.userPattern($0, prefix: #"\b"#, suffix: #"\b"#, ignoreCase: true).matches(text)
            }
            return ["forbidden_words": .strings(random.sample(absent, count: min(absent.count, random.int(in: 1...2))))]
        }, describe: { arguments, _ in
            "Do not use the words \(list(strings(arguments, "forbidden_words"), joiner: "or"))."
        }),
        GeneratedInstruction(id: "keywords:frequency", measure: { text, _, random in
            let relation = random.pick(Relation.allCases)
            let keyword = random.pick(relation == .atLeast ? contentWords(text) : contentWords(text) + TaskVocabulary.forbiddenCandidates)
            let count = PythonRegex.userPattern(keyword, ignoreCase: true).count(in: text)
            return ["keyword": .string(keyword), "relation": .string(relation.rawValue),
                    "frequency": .int(threshold(for: count, relation, slack: 1, random: random))]
        }, describe: { arguments, _ in
            "Use the word \"\(string(arguments, "keyword"))\" \(phrase(relation(arguments, "relation"))) \(times(integer(arguments, "frequency")))."
        }),
        GeneratedInstruction(id: "keywords:letter_frequency", measure: { text, _, random in
            let relation = random.pick(Relation.allCases)
            let lowered = text.lowercased()
            // "At least" needs a letter that occurs; "less than" may use any.
            let letters = Array("abcdefghilmnoprstuwy").map(String.init).filter { relation == .lessThan || lowered.contains($0) }
            let letter = random.pick(letters)
            let count = lowered.filter { String($0) == letter }.count
            return ["letter": .string(letter), "let_relation": .string(relation.rawValue),
                    "let_frequency": .int(threshold(for: count, relation, slack: 5, random: random))]
        }, describe: { arguments, _ in
            "The letter \"\(string(arguments, "letter"))\" should appear \(phrase(relation(arguments, "let_relation"))) \(times(integer(arguments, "let_frequency")))."
        }),
        GeneratedInstruction(id: "detectable_format:number_bullet_lists", shape: { draft, _, random in
            let count = random.int(in: 2...5)
            draft.layout = .bullets(count: count)
            return ["num_bullets": .int(count)]
        }, describe: { arguments, _ in
            "Use exactly \(integer(arguments, "num_bullets")) markdown bullet points such as:\n* first point\n* second point"
        }),
        GeneratedInstruction(id: "detectable_format:number_highlighted_sections", shape: { draft, _, random in
            draft.highlights = random.int(in: 1...3)
            return [:]
        }, measure: { text, arguments, _ in
            arguments.merging(["num_highlights": .int(Format.highlightCount(text))]) { first, _ in first }
        }, describe: { arguments, _ in
            "Highlight at least \(integer(arguments, "num_highlights")) parts of your answer with markdown, for example *highlighted part*."
        }),
        GeneratedInstruction(id: "detectable_format:multiple_sections", shape: { draft, _, random in
            let splitter = random.pick(["Section", "SECTION"])
            let count = random.int(in: 2...4)
            draft.layout = .sections(splitter: splitter, count: count)
            return ["section_spliter": .string(splitter), "num_sections": .int(count)]
        }, describe: { arguments, _ in
            let splitter = string(arguments, "section_spliter")
            return "Divide your answer into \(integer(arguments, "num_sections")) sections. Start each with \(splitter) X, such as \(splitter) 1."
        }),
        GeneratedInstruction(id: "detectable_format:json_format", shape: { draft, _, _ in
            draft.layout = .json
            return [:]
        }, describe: { _, random in
            random.pick(["Wrap your entire answer in JSON format.", "Your whole output must be valid JSON."])
        }),
        GeneratedInstruction(id: "detectable_format:title", shape: { draft, setting, random in
            draft.title = TaskVocabulary.fill(random.pick(TaskVocabulary.titles), topic: setting.topic)
            return [:]
        }, describe: { _, _ in
            "Give your answer a title wrapped in double angular brackets, such as <<my title>>."
        }),
        GeneratedInstruction(id: "detectable_format:constrained_response", shape: { draft, _, random in
            draft.layout = .fixedAnswer(random.pick(Format.constrainedAnswers))
            return [:]
        }, describe: { _, _ in
            "Answer with one of these exact options: \"My answer is yes.\" or \"My answer is no.\" or \"My answer is maybe.\""
        }),
    ]

    static let contentAndCombination: [GeneratedInstruction] = [
        GeneratedInstruction(id: "detectable_content:postscript", shape: { draft, _, random in
            let marker = random.pick(["P.S.", "P.P.S"])
            draft.postscript = marker + " " + random.pick(TaskVocabulary.postscripts)
            return ["postscript_marker": .string(marker)]
        }, describe: { arguments, _ in
            "At the end of your answer add a postscript starting with \(string(arguments, "postscript_marker"))"
        }),
        GeneratedInstruction(id: "detectable_content:number_placeholders", shape: { draft, _, random in
            let count = random.int(in: 1...3)
            draft.placeholderSentence = TaskVocabulary.placeholderSentences[count - 1]
            return ["num_placeholders": .int(count)]
        }, describe: { arguments, _ in
            "Include at least \(integer(arguments, "num_placeholders")) placeholders in square brackets, such as [name]."
        }),
        GeneratedInstruction(id: "startend:end_checker", shape: { draft, _, random in
            let phrase = random.pick(TaskVocabulary.endPhrases)
            draft.endPhrase = phrase
            return ["end_phrase": .string(phrase)]
        }, describe: { arguments, _ in
            "End your answer with this exact phrase: \"\(string(arguments, "end_phrase"))\" Nothing may follow it."
        }),
        GeneratedInstruction(id: "startend:quotation", shape: { draft, _, _ in
            draft.quoted = true
            return [:]
        }, describe: { _, random in
            random.pick(["Wrap your entire answer in double quotation marks.", "Put the whole reply inside double quotes."])
        }),
        GeneratedInstruction(id: "combination:repeat_prompt", shape: { draft, setting, _ in
            draft.repeatedRequest = setting.request
            return ["prompt_to_repeat": .string(setting.request)]
        }, describe: { _, _ in
            "First repeat the request above word for word without change, then give your answer. Say nothing before the repeated request."
        }),
        GeneratedInstruction(id: "combination:two_responses", shape: { draft, _, _ in
            draft.twoResponses = true
            return [:]
        }, describe: { _, _ in
            "Give two different answers separated by six asterisks: ******"
        }),
    ]
}
