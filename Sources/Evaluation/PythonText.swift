import Foundation

/// The string operations IFEval's checkers are defined with (Python `str` methods and `re`),
/// written out so that the Swift checkers give the same verdicts.
///
/// Python works on code points, so these work on `unicodeScalars`, not on grapheme clusters.
enum PythonText {
    /// Python's `str.isspace()` set: Unicode White_Space plus the ASCII separators 0x1C–0x1F.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }

    /// `str.strip()` with no argument.
    static func strip(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isSpace($0) })!
        return String(scalars[first...last])
    }

    /// `str.rstrip()` with no argument.
    static func rstrip(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[...last])
    }

    /// `str.strip(chars)`.
    static func strip(_ text: String, characters: Set<Unicode.Scalar>) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !characters.contains($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !characters.contains($0) })!
        return String(scalars[first...last])
    }

    /// `str.lstrip(chars)`.
    static func lstrip(_ text: String, characters: Set<Unicode.Scalar>) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !characters.contains($0) }) else { return "" }
        return String(scalars[first...])
    }

    /// `str.rstrip(chars)`.
    static func rstrip(_ text: String, characters: Set<Unicode.Scalar>) -> String {
        let scalars = text.unicodeScalars
        guard let last = scalars.lastIndex(where: { !characters.contains($0) }) else { return "" }
        return String(scalars[...last])
    }

    /// `str.split()` with no argument: runs of whitespace separate, no empty pieces.
    static func splitOnWhitespace(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isSpace(scalar) {
                if !current.isEmpty { pieces.append(String(current)); current = .init() }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { pieces.append(String(current)) }
        return pieces
    }

    /// `str.split(separator)` with a literal separator: keeps empty pieces.
    static func split(_ text: String, separator: String) -> [String] {
        text.components(separatedBy: separator)
    }

    private static func isCasedLower(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.isLowercase }
    private static func isCasedUpper(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.isUppercase }
    private static func isTitle(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.generalCategory == .titlecaseLetter }

    /// `str.isupper()`: at least one cased character and no lowercase or titlecase one.
    static func isUpper(_ text: String) -> Bool {
        var sawUpper = false
        for scalar in text.unicodeScalars {
            if isCasedLower(scalar) || isTitle(scalar) { return false }
            if isCasedUpper(scalar) { sawUpper = true }
        }
        return sawUpper
    }

    /// `str.islower()`: at least one cased character and no uppercase or titlecase one.
    static func isLower(_ text: String) -> Bool {
        var sawLower = false
        for scalar in text.unicodeScalars {
            if isCasedUpper(scalar) || isTitle(scalar) { return false }
            if isCasedLower(scalar) { sawLower = true }
        }
        return sawLower
    }

    /// Python's `\w` for `str` patterns: letters, numbers (any numeric category) and underscore.
    /// Unlike ICU's `\w`, combining marks are not word characters.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    /// The number of `\w+` runs: IFEval's word count (NLTK's `RegexpTokenizer(r"\w+")`).
    static func countWords(_ text: String) -> Int {
        var count = 0
        var inWord = false
        for scalar in text.unicodeScalars {
            let word = isWordCharacter(scalar)
            if word && !inWord { count += 1 }
            inWord = word
        }
        return count
    }
}

/// A thin wrapper over `NSRegularExpression` with Python `re` conventions: `.` and `$` treat only
/// "\n" as a line end, and results are Swift strings.
struct PythonRegex {
    let expression: NSRegularExpression

    /// `multiline` is Python's `re.MULTILINE`; `ignoreCase` is `re.IGNORECASE`.
    init(_ pattern: String, multiline: Bool = false, ignoreCase: Bool = false) throws {
        var options: NSRegularExpression.Options = [.useUnixLineSeparators]
        if multiline { options.insert(.anchorsMatchLines) }
        if ignoreCase { options.insert(.caseInsensitive) }
        expression = try NSRegularExpression(pattern: pattern, options: options)
    }

    /// For patterns written in this module: a bad one is a programming error.
    init(literal pattern: String, multiline: Bool = false) {
        do {
            try self.init(pattern, multiline: multiline)
        } catch {
            preconditionFailure("invalid built-in pattern \(pattern): \(error)")
        }
    }

    /// A pattern built from user text (IFEval uses keywords as regular expressions); text that is
    /// not a valid pattern is matched literally rather than failing the evaluation.
    static func userPattern(_ pattern: String, prefix: String = "", suffix: String = "", ignoreCase: Bool,
                            multiline: Bool = false) -> PythonRegex {
        if let regex = try? PythonRegex(prefix + pattern + suffix, multiline: multiline, ignoreCase: ignoreCase) { return regex }
        let escaped = NSRegularExpression.escapedPattern(for: pattern)
        return (try? PythonRegex(prefix + escaped + suffix, multiline: multiline, ignoreCase: ignoreCase))!
    }

    private func all(_ text: String) -> NSRange { NSRange(text.startIndex..<text.endIndex, in: text) }

    /// `re.search(...) is not None`.
    func matches(_ text: String) -> Bool {
        expression.firstMatch(in: text, range: all(text)) != nil
    }

    /// `len(re.findall(...))`.
    func count(in text: String) -> Int {
        expression.numberOfMatches(in: text, range: all(text))
    }

    /// The matched substrings, as `re.findall` returns them for a pattern without groups.
    func matchedStrings(in text: String) -> [String] {
        expression.matches(in: text, range: all(text)).compactMap { match in
            Range(match.range, in: text).map { String(text[$0]) }
        }
    }

    /// `re.split(...)`: the pieces between matches.
    func split(_ text: String) -> [String] {
        var pieces: [String] = []
        var start = text.startIndex
        for match in expression.matches(in: text, range: all(text)) {
            guard let range = Range(match.range, in: text) else { continue }
            pieces.append(String(text[start..<range.lowerBound]))
            start = range.upperBound
        }
        pieces.append(String(text[start...]))
        return pieces
    }
}
