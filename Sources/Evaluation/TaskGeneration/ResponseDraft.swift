import Foundation

/// The shape of a reference response, decided by a task's instructions before any text exists;
/// `render()` then writes it. Each instruction sets only the fields it is about.
struct ResponseDraft {
    enum Layout: Equatable {
        /// Paragraphs joined by `separator` ("\n\n" or the "***" divider).
        case paragraphs(count: Int, separator: String)
        case bullets(count: Int)
        case sections(splitter: String, count: Int)
        /// One of IFEval's fixed answers, then a sentence of explanation.
        case fixedAnswer(String)
        /// The text as the value of {"answer": ...}.
        case json
    }

    enum Case { case asWritten, lower, upper }

    var layout = Layout.paragraphs(count: 1, separator: "\n\n")
    /// Sentences for the (first) response, in order; `alternative` is used for a second response.
    var sentences: [String] = []
    var alternative: [String] = []
    var emphatic: [String] = []
    var highlights = 0
    var placeholderSentence: String?
    var title: String?
    var repeatedRequest: String?
    var postscript: String?
    var endPhrase: String?
    var twoResponses = false
    var textCase = Case.asWritten
    var quoted = false
    /// Paragraph `index` (from 0) starts with `word`.
    var openingWord: (index: Int, word: String)?

    func render() -> String {
        var body = renderBody(sentences)
        if twoResponses { body += "\n" + Combination.responseSeparator + "\n" + renderBody(alternative) }
        var lines: [String] = []
        if let repeatedRequest { lines.append(repeatedRequest) }
        if let title { lines.append("<<\(title)>>") }
        lines.append(body)
        var text = lines.joined(separator: "\n")
        if let postscript { text += "\n" + postscript }
        if let endPhrase { text += " " + endPhrase }
        switch textCase {
        case .asWritten: break
        case .lower: text = text.lowercased()
        case .upper: text = text.uppercased()
        }
        if layout == .json { text = Self.jsonObject(answer: text) }
        return quoted ? "\"" + text + "\"" : text
    }

    /// The body of one response: the layout filled with `pool`'s sentences plus the extras.
    private func renderBody(_ pool: [String]) -> String {
        var sentences = pool
        if case .fixedAnswer = layout { sentences = Array(pool.prefix(1)) }
        sentences.insert(contentsOf: emphatic, at: min(1, sentences.count))
        for index in 0..<min(highlights, sentences.count) { sentences[index] = Self.highlighted(sentences[index]) }
        if let placeholderSentence { sentences.append(placeholderSentence) }
        switch layout {
        case .paragraphs(let count, let separator):
            var paragraphs = Self.distribute(sentences, into: count).map { $0.joined(separator: " ") }
            if let openingWord {
                let paragraph = paragraphs[openingWord.index]
                paragraphs[openingWord.index] = openingWord.word + " " + paragraph.prefix(1).lowercased() + paragraph.dropFirst()
            }
            return paragraphs.joined(separator: separator)
        case .bullets(let count):
            let items = Self.distribute(sentences, into: count).map { "* " + $0.joined(separator: " ") }
            return ([TaskVocabulary.bulletIntro] + items).joined(separator: "\n")
        case .sections(let splitter, let count):
            return Self.distribute(sentences, into: count).enumerated().map { index, group in
                "\(splitter) \(index + 1)\n" + group.joined(separator: " ")
            }.joined(separator: "\n\n")
        case .fixedAnswer(let answer):
            return ([answer] + sentences).joined(separator: " ")
        case .json:
            return sentences.joined(separator: " ")
        }
    }

    /// Splits `items` into `count` consecutive non-empty groups as evenly as possible
    /// (requires items.count >= count).
    static func distribute(_ items: [String], into count: Int) -> [[String]] {
        precondition(count >= 1 && items.count >= count, "need at least \(count) sentences, have \(items.count)")
        var groups: [[String]] = []
        var start = 0
        for group in 0..<count {
            let end = start + (items.count - start) / (count - group)
            groups.append(Array(items[start..<end]))
            start = end
        }
        return groups
    }

    /// Wraps the first word of four or more letters after the first word in *asterisks*.
    static func highlighted(_ sentence: String) -> String {
        var words = sentence.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard let index = words.indices.dropFirst().first(where: { words[$0].count >= 4 && words[$0].allSatisfy(\.isLetter) }) else {
            return sentence
        }
        words[index] = "*" + words[index] + "*"
        return words.joined(separator: " ")
    }

    static func jsonObject(answer: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(["answer": answer])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
