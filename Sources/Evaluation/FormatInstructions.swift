import Foundation

/// `detectable_format:*`: bullets, highlights, sections, JSON, title, fixed answers.
extension InstructionRegistry {
    static let formatBuilders: [String: InstructionBuilder] = [
        // Exactly `num_bullets` markdown bullet lines ("* item" or "- item").
        "detectable_format:number_bullet_lists": { arguments, _ in
            let expected = try arguments.integer("num_bullets")
            return { Format.bulletCount($0) == expected }
        },
        // At least `num_highlights` highlighted spans: *text* or **text**.
        "detectable_format:number_highlighted_sections": { arguments, _ in
            let minimum = try arguments.integer("num_highlights")
            return { Format.highlightCount($0) >= minimum }
        },
        // At least `num_sections` section headers "<section_spliter> <number>".
        "detectable_format:multiple_sections": { arguments, _ in
            let splitter = PythonText.strip(try arguments.string("section_spliter"))
            let minimum = try arguments.integer("num_sections")
            let header = PythonRegex.userPattern(splitter, prefix: #"\s?"#, suffix: #"\s?\d+\s?"#, ignoreCase: false)
            return { header.count(in: $0) >= minimum }
        },
        // The whole response parses as JSON, optionally inside a ``` fence.
        "detectable_format:json_format": { _, _ in
            { Format.isJSON($0) }
        },
        // A title in double angular brackets: <<title>>.
        "detectable_format:title": { _, _ in
            { Format.hasTitle($0) }
        },
        // Contains one of IFEval's three fixed answers.
        "detectable_format:constrained_response": { _, _ in
            { response in
                let text = PythonText.strip(response)
                return Format.constrainedAnswers.contains { text.contains($0) }
            }
        },
    ]
}

enum Format {
    static let constrainedAnswers = ["My answer is yes.", "My answer is no.", "My answer is maybe."]

    private static let starBullet = PythonRegex(literal: #"^\s*\*[^\*].*$"#, multiline: true)
    private static let dashBullet = PythonRegex(literal: #"^\s*-.*$"#, multiline: true)
    private static let singleHighlight = PythonRegex(literal: #"\*[^\n\*]*\*"#)
    private static let doubleHighlight = PythonRegex(literal: #"\*\*[^\n\*]*\*\*"#)
    private static let title = PythonRegex(literal: #"<<[^\n]+>>"#)

    static func bulletCount(_ text: String) -> Int {
        starBullet.count(in: text) + dashBullet.count(in: text)
    }

    /// Single-star spans with non-blank content, plus double-star spans with non-blank content
    /// (IFEval counts a **bold** span in both passes when it has content).
    static func highlightCount(_ text: String) -> Int {
        let single = singleHighlight.matchedStrings(in: text).filter {
            !PythonText.strip(PythonText.strip($0, characters: ["*"])).isEmpty
        }
        let double = doubleHighlight.matchedStrings(in: text).filter {
            !PythonText.strip(String($0.dropFirst(2).dropLast(2))).isEmpty
        }
        return single.count + double.count
    }

    static func hasTitle(_ text: String) -> Bool {
        title.matchedStrings(in: text).contains { match in
            let inner = PythonText.rstrip(PythonText.lstrip(match, characters: ["<"]), characters: [">"])
            return !PythonText.strip(inner).isEmpty
        }
    }

    /// IFEval strips whitespace, then the prefixes "```json", "```Json", "```JSON", "```" (each once,
    /// in that order), the suffix "```", and whitespace again; what is left must be JSON.
    static func isJSON(_ response: String) -> Bool {
        var text = PythonText.strip(response)
        for prefix in ["```json", "```Json", "```JSON", "```"] where text.hasPrefix(prefix) {
            text = String(text.dropFirst(prefix.count))
        }
        if text.hasSuffix("```") { text = String(text.dropLast(3)) }
        text = PythonText.strip(text)
        guard !text.isEmpty else { return false }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil
    }
}
