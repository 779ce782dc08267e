/// `length_constraints:*`: words, sentences and paragraphs.
extension InstructionRegistry {
    static let lengthBuilders: [String: InstructionBuilder] = [
        // Word count (runs of word characters) compared with `num_words`.
        "length_constraints:number_words": { arguments, _ in
            let threshold = try arguments.integer("num_words")
            let relation = try arguments.relation("relation")
            return { relation.holds(PythonText.countWords($0), threshold) }
        },
        // Sentence count (Punkt) compared with `num_sentences`.
        "length_constraints:number_sentences": { arguments, context in
            let threshold = try arguments.integer("num_sentences")
            let relation = try arguments.relation("relation")
            let splitter = context.sentenceSplitter
            return { relation.holds(splitter.countSentences($0), threshold) }
        },
        // Exactly `num_paragraphs` paragraphs separated by the markdown divider "***".
        "length_constraints:number_paragraphs": { arguments, _ in
            let expected = try arguments.integer("num_paragraphs")
            return { Paragraphs.dividedCount($0) == expected }
        },
        // Exactly `num_paragraphs` paragraphs separated by blank lines ("\n\n"), and paragraph
        // `nth_paragraph` (from 1) starts with `first_word`.
        "length_constraints:nth_paragraph_first_word": { arguments, _ in
            let expected = try arguments.integer("num_paragraphs")
            let nth = try arguments.integer("nth_paragraph")
            let firstWord = try arguments.string("first_word").lowercased()
            guard nth >= 1 && nth <= expected else {
                throw InstructionError.invalidArgument(instructionID: arguments.instructionID, name: "nth_paragraph",
                                                       problem: "must be between 1 and num_paragraphs (\(expected)), got \(nth)")
            }
            return { Paragraphs.followsFirstWord($0, paragraphs: expected, nth: nth, firstWord: firstWord) }
        },
    ]
}

enum Paragraphs {
    private static let divider = PythonRegex(literal: #"\s?\*\*\*\s?"#)

    /// Paragraphs between "***" dividers. Empty pieces at the very start or end do not count; an
    /// empty piece in the middle (two dividers in a row) makes the count invalid (-1).
    static func dividedCount(_ text: String) -> Int {
        let pieces = divider.split(text)
        var count = pieces.count
        for (index, piece) in pieces.enumerated() where PythonText.strip(piece).isEmpty {
            guard index == 0 || index == pieces.count - 1 else { return -1 }
            count -= 1
        }
        return count
    }

    /// IFEval's nth-paragraph rule. Pieces are split on "\n\n"; blank pieces do not count as
    /// paragraphs but still occupy an index when looking up the nth one, as in IFEval.
    static func followsFirstWord(_ text: String, paragraphs expected: Int, nth: Int, firstWord: String) -> Bool {
        let pieces = PythonText.split(text, separator: "\n\n")
        let count = pieces.count - pieces.filter { PythonText.strip($0).isEmpty }.count
        guard nth <= count else { return false }
        let paragraph = PythonText.strip(pieces[nth - 1])
        guard let word = PythonText.splitOnWhitespace(paragraph).first else { return false }
        let unquoted = PythonText.lstrip(PythonText.lstrip(word, characters: ["'"]), characters: ["\""])
        var actual = ""
        for scalar in unquoted.unicodeScalars {
            if [".", ",", "?", "!", "'", "\""].contains(scalar) { break }
            actual += String(scalar).lowercased()
        }
        return count == expected && actual == firstWord
    }
}
