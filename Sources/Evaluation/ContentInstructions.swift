/// `detectable_content:*`, `startend:*` and `combination:*`.
extension InstructionRegistry {
    static let contentBuilders: [String: InstructionBuilder] = [
        // A line (anywhere) starting with the postscript marker, e.g. "P.S." or "P.P.S", any case.
        "detectable_content:postscript": { arguments, _ in
            let marker = PythonText.strip(try arguments.string("postscript_marker"))
            let pattern: PythonRegex
            switch marker {
            case "P.P.S": pattern = PythonRegex(literal: #"\s*p\.\s?p\.\s?s.*$"#, multiline: true)
            case "P.S.": pattern = PythonRegex(literal: #"\s*p\.\s?s\..*$"#, multiline: true)
            default: pattern = PythonRegex.userPattern(marker.lowercased(), prefix: #"\s*"#, suffix: ".*$", ignoreCase: false, multiline: true)
            }
            return { pattern.matches($0.lowercased()) }
        },
        // At least `num_placeholders` placeholders in square brackets, like [address].
        "detectable_content:number_placeholders": { arguments, _ in
            let minimum = try arguments.integer("num_placeholders")
            let placeholder = PythonRegex(literal: #"\[.*?\]"#)
            return { placeholder.count(in: $0) >= minimum }
        },
        // Ends with `end_phrase` (ignoring case, surrounding whitespace and double quotes).
        "startend:end_checker": { arguments, _ in
            let phrase = PythonText.strip(try arguments.string("end_phrase")).lowercased()
            return { response in
                let text = PythonText.strip(PythonText.strip(response), characters: ["\""]).lowercased()
                return text.unicodeScalars.reversed().starts(with: phrase.unicodeScalars.reversed())
            }
        },
        // Wrapped in double quotation marks.
        "startend:quotation": { _, _ in
            { response in
                let scalars = Array(PythonText.strip(response).unicodeScalars)
                return scalars.count > 1 && scalars.first == "\"" && scalars.last == "\""
            }
        },
        // Starts by repeating `prompt_to_repeat` (ignoring case and surrounding whitespace).
        "combination:repeat_prompt": { arguments, _ in
            let request = PythonText.strip(try arguments.string("prompt_to_repeat")).lowercased()
            return { response in
                PythonText.strip(response).lowercased().unicodeScalars.starts(with: request.unicodeScalars)
            }
        },
        // Two different non-empty responses separated by "******".
        "combination:two_responses": { _, _ in
            { Combination.hasTwoResponses($0) }
        },
    ]
}

enum Combination {
    static let responseSeparator = "******"

    static func hasTwoResponses(_ text: String) -> Bool {
        let pieces = PythonText.split(text, separator: responseSeparator)
        var responses: [String] = []
        for (index, piece) in pieces.enumerated() {
            if PythonText.strip(piece).isEmpty {
                if index != 0 && index != pieces.count - 1 { return false }
            } else {
                responses.append(piece)
            }
        }
        return responses.count == 2 && PythonText.strip(responses[0]) != PythonText.strip(responses[1])
    }
}
