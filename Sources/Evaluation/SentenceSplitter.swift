import Foundation

/// Learned parameters of a Punkt sentence splitter (Kiss & Strunk 2006), the model IFEval counts
/// sentences with (NLTK's English Punkt model).
///
/// The built-in `.english` holds a short hand-written abbreviation list and no learned
/// statistics, so it agrees with NLTK on ordinary prose but can differ after a rare abbreviation
/// or a number ending a sentence. `init(directory:)` reads NLTK's `punkt_tab/<language>` folder
/// (abbrev_types.txt, collocations.tab, sent_starters.txt, ortho_context.tab) for exact parity.
public struct PunktParameters: Sendable {
    public var abbreviations: Set<String>
    public var collocations: Set<String>  // "first\tsecond"
    public var sentenceStarters: Set<String>
    public var orthographicContext: [String: Int]

    public init(abbreviations: Set<String>, collocations: Set<String> = [], sentenceStarters: Set<String> = [],
                orthographicContext: [String: Int] = [:]) {
        self.abbreviations = abbreviations
        self.collocations = collocations
        self.sentenceStarters = sentenceStarters
        self.orthographicContext = orthographicContext
    }

    /// Common English abbreviations that end in a period mid-sentence (lowercase, final period removed).
    public static let english = PunktParameters(abbreviations: [
        "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp", "vs", "etc",
        "e.g", "i.e", "a.m", "p.m", "u.s", "u.k", "jan", "feb", "aug", "sept", "oct", "nov", "dec",
        "gen", "col", "lt", "sen", "rep", "gov", "ph.d", "no", "vol", "fig", "approx", "dept",
    ])

    /// Reads an NLTK `punkt_tab` language folder.
    public init(directory: String) throws {
        func lines(_ name: String) throws -> [Substring] {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw PunktError.unreadable(path)
            }
            return text.split(separator: "\n", omittingEmptySubsequences: true)
        }
        abbreviations = Set(try lines("abbrev_types.txt").map(String.init))
        sentenceStarters = Set(try lines("sent_starters.txt").map(String.init))
        collocations = Set(try lines("collocations.tab").map(String.init))
        var context: [String: Int] = [:]
        for (number, line) in try lines("ortho_context.tab").enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2, let flags = Int(fields[1]) else {
                throw PunktError.malformed("\(directory)/ortho_context.tab:\(number + 1)")
            }
            context[String(fields[0])] = flags
        }
        orthographicContext = context
    }
}

public enum PunktError: Error, CustomStringConvertible {
    case unreadable(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .unreadable(let path): return "\(path): cannot read Punkt parameter file"
        case .malformed(let place): return "\(place): expected \"type<TAB>flags\""
        }
    }
}

/// Punkt sentence boundary detection at inference time: candidate ends are ".", "?" and "!"
/// followed by whitespace and a token (or by closing punctuation); a candidate is a boundary when
/// the annotated tokens around it say so (abbreviations, initials, numbers, ellipses and the
/// orthographic heuristic). Only the sentence count is needed for IFEval.
public struct SentenceSplitter: Sendable {
    public let parameters: PunktParameters

    public init(parameters: PunktParameters = .english) {
        self.parameters = parameters
    }

    // Orthographic context flags, as stored in ortho_context.tab.
    private static let upperFlags = (1 << 1) | (1 << 2) | (1 << 3)
    private static let midUpper = 1 << 2
    private static let beginLower = 1 << 4
    private static let lowerFlags = (1 << 4) | (1 << 5) | (1 << 6)

    /// Characters that cannot be inside a word token; "?" and "!" also end sentences.
    private static let nonWord = #"(?:[)";}\]\*:@'\({\[\x{2018}\x{2019}\x{201C}\x{201D}\x{AB}\x{BB}?!])"#
    private static let multiCharPunctuation = #"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"#
    private static let wordStart = #"(?=[^\(\"\`{\[:;&\#\*@\)}\]\-,])"#
    /// A word token runs until whitespace, a non-word character, multi-character punctuation or a
    /// word-final comma; anything else is a one-character token.
    private static let wordToken = PythonRegex(literal: multiCharPunctuation + "|" + wordStart + #"\S+?(?=\s|$|"#
        + nonWord + "|" + multiCharPunctuation + #"|,(?=$|\s|"# + nonWord + "|" + multiCharPunctuation + #"))|\S"#)
    /// A possible sentence end: group 1 is what follows it, group 2 the next token when whitespace follows.
    private static let candidateEnd = PythonRegex(literal: #"[.?!](?=("# + nonWord + #"|\s+(\S+)))"#)
    /// Closing punctuation after a boundary that belongs to the sentence before it.
    private static let closingPunctuation = PythonRegex(literal: #"^["')\]}\x{2018}\x{2019}\x{201C}\x{201D}\x{AB}\x{BB}]+?(?:\s+|(?=--)|$)"#,
                                                        multiline: true)
    private static let numeric = PythonRegex(literal: #"^-?[\.,]?\d[\d,\.-]*\.?$"#)
    private static let initial = PythonRegex(literal: #"^[^\W\d]\.$"#)

    /// The number of sentences NLTK's Punkt tokenizer returns for `text`.
    public func countSentences(_ text: String) -> Int {
        let ns = text as NSString
        var slices: [(start: Int, end: Int)] = []
        var lastBreak = 0
        for candidate in candidateContexts(text) where containsBreak(candidate.context) {
            slices.append((lastBreak, candidate.end))
            lastBreak = candidate.nextStart
        }
        slices.append((lastBreak, (PythonText.rstrip(text) as NSString).length))

        // Closing quotes and brackets after a boundary move to the sentence before it; a sentence
        // left empty by that is dropped.
        var count = 0
        var realign = 0
        for index in slices.indices {
            let start = slices[index].start + realign
            let nonEmpty = slices[index].end > start
            guard index + 1 < slices.count else {
                if nonEmpty { count += 1 }
                continue
            }
            let next = slices[index + 1]
            let nextText = next.end > next.start ? ns.substring(with: NSRange(location: next.start, length: next.end - next.start)) : ""
            if let match = Self.closingPunctuation.expression.firstMatch(in: nextText, options: .anchored,
                                                                          range: NSRange(location: 0, length: (nextText as NSString).length)) {
                count += 1
                realign = NSMaxRange(match.range)
            } else {
                realign = 0
                if nonEmpty { count += 1 }
            }
        }
        return count
    }

    private struct Candidate {
        let context: String
        let end: Int        // UTF-16 offset just past the end character
        let nextStart: Int  // where the following sentence starts
    }

    /// Each candidate end with its context: the word before it, the end character, and what follows
    /// (a punctuation character, or whitespace and the next token). A candidate whose preceding word
    /// overlaps the next candidate's (as in "!!!") gives way to the later one, as in NLTK.
    private func candidateContexts(_ text: String) -> [Candidate] {
        let ns = text as NSString
        var result: [Candidate] = []
        var previous: NSTextCheckingResult?
        var previousWord = (start: 0, end: 0)
        func candidate(_ match: NSTextCheckingResult, wordStart: Int) -> Candidate {
            let word = ns.substring(with: NSRange(location: wordStart, length: match.range.location - wordStart))
            let nextToken = match.range(at: 2)
            let nextStart = nextToken.location != NSNotFound ? nextToken.location : NSMaxRange(match.range)
            return Candidate(context: word + ns.substring(with: match.range) + ns.substring(with: match.range(at: 1)),
                             end: NSMaxRange(match.range), nextStart: nextStart)
        }
        for match in Self.candidateEnd.expression.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let before = ns.substring(with: NSRange(location: previousWord.end, length: match.range.location - previousWord.end))
            let lastSpace = Self.lastWhitespaceOffset(before)
            let wordStart = lastSpace != 0 ? previousWord.end + lastSpace + 1 : previousWord.start
            if let previous, previousWord.end <= wordStart {
                result.append(candidate(previous, wordStart: previousWord.start))
            }
            previous = match
            previousWord = (wordStart, match.range.location)
        }
        if let previous { result.append(candidate(previous, wordStart: previousWord.start)) }
        return result
    }

    /// UTF-16 offset of the last ASCII whitespace character in `text`, or 0 when there is none
    /// (NLTK does not tell "none" from "at offset 0" either).
    private static func lastWhitespaceOffset(_ text: String) -> Int {
        var offset = (text as NSString).length
        for scalar in text.unicodeScalars.reversed() {
            offset -= scalar.utf16.count
            if [" ", "\t", "\n", "\r", "\u{0B}", "\u{0C}"].contains(scalar) { return offset }
        }
        return 0
    }

    private struct Token {
        let text: String
        let type: String
        var sentenceBreak = false
        var abbreviation = false
        var ellipsis = false

        init(_ text: String) {
            self.text = text
            type = SentenceSplitter.numeric.matches(text.lowercased()) ? "##number##" : text.lowercased()
        }

        var periodFinal: Bool { text.hasSuffix(".") }
        var typeNoPeriod: String { type.count > 1 && type.hasSuffix(".") ? String(type.dropLast()) : type }
        var typeNoSentencePeriod: String { sentenceBreak ? typeNoPeriod : type }
        var firstUpper: Bool { text.unicodeScalars.first.map { $0.properties.isUppercase } ?? false }
        var firstLower: Bool { text.unicodeScalars.first.map { $0.properties.isLowercase } ?? false }
        var isInitial: Bool { SentenceSplitter.initial.matches(text) }
    }

    /// True when some token other than the last of `context` is annotated as a sentence break.
    private func containsBreak(_ context: String) -> Bool {
        var tokens: [Token] = []
        for line in context.components(separatedBy: "\n") where !PythonText.strip(line).isEmpty {
            tokens += Self.wordToken.matchedStrings(in: line).map(Token.init)
        }
        for index in tokens.indices { annotateFirstPass(&tokens[index]) }
        for index in tokens.indices.dropLast() {
            annotateSecondPass(&tokens[index], next: tokens[index + 1])
        }
        return tokens.dropLast().contains { $0.sentenceBreak }
    }

    private func annotateFirstPass(_ token: inout Token) {
        let text = token.text
        if text == "." || text == "?" || text == "!" {
            token.sentenceBreak = true
        } else if text.count >= 2 && text.allSatisfy({ $0 == "." }) {
            token.ellipsis = true
        } else if token.periodFinal && !text.hasSuffix("..") {
            let stem = String(text.dropLast()).lowercased()
            let lastPart = stem.split(separator: "-", omittingEmptySubsequences: false).last.map(String.init) ?? stem
            if parameters.abbreviations.contains(stem) || parameters.abbreviations.contains(lastPart) {
                token.abbreviation = true
            } else {
                token.sentenceBreak = true
            }
        }
    }

    private func annotateSecondPass(_ token: inout Token, next: Token) {
        guard token.periodFinal else { return }
        let type = token.typeNoPeriod
        let nextType = next.typeNoSentencePeriod
        let isInitial = token.isInitial
        if parameters.collocations.contains(type + "\t" + nextType) {
            token.sentenceBreak = false
            token.abbreviation = true
            return
        }
        if (token.abbreviation || token.ellipsis) && !isInitial {
            if orthographicHeuristic(next) == .starter {
                token.sentenceBreak = true
                return
            }
            if next.firstUpper && parameters.sentenceStarters.contains(nextType) {
                token.sentenceBreak = true
                return
            }
        }
        if isInitial || type == "##number##" {
            let verdict = orthographicHeuristic(next)
            if verdict == .notStarter {
                token.sentenceBreak = false
                token.abbreviation = true
                return
            }
            if verdict == .unknown && isInitial && next.firstUpper
                && (parameters.orthographicContext[nextType] ?? 0) & Self.lowerFlags == 0 {
                token.sentenceBreak = false
                token.abbreviation = true
            }
        }
    }

    private enum StarterVerdict { case starter, notStarter, unknown }

    /// Does `token` start a sentence, judging from how its type was capitalized in training text?
    private func orthographicHeuristic(_ token: Token) -> StarterVerdict {
        if [";", ":", ",", ".", "!", "?"].contains(token.text) { return .notStarter }
        let context = parameters.orthographicContext[token.typeNoSentencePeriod] ?? 0
        if token.firstUpper && context & Self.lowerFlags != 0 && context & Self.midUpper == 0 { return .starter }
        if token.firstLower && (context & Self.upperFlags != 0 || context & Self.beginLower == 0) { return .notStarter }
        return .unknown
    }
}
