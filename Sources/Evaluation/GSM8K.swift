import Foundation

/// One GSM8K row: a word problem and its worked answer, which ends with "#### <number>".
public struct GSM8KRow: Codable, Equatable, Sendable {
    public var question: String
    public var answer: String

    public init(question: String, answer: String) {
        self.question = question
        self.answer = answer
    }

    /// The reference number after the last "####".
    public func referenceNumber() throws -> Decimal {
        guard let marker = answer.range(of: "####", options: .backwards) else {
            throw GSM8KError.missingFinalAnswer
        }
        guard let number = GSM8K.lastNumber(in: String(answer[marker.upperBound...])) else {
            throw GSM8KError.unparsableFinalAnswer(String(answer[marker.upperBound...]))
        }
        return number
    }
}

public enum GSM8KError: Error, CustomStringConvertible, Equatable {
    case missingFinalAnswer
    case unparsableFinalAnswer(String)

    public var description: String {
        switch self {
        case .missingFinalAnswer: return "field \"answer\": no final answer \"#### N\""
        case .unparsableFinalAnswer(let text): return "field \"answer\": \"#### \(text)\" is not a number"
        }
    }
}

/// Final-number extraction and exact match, the usual GSM8K scoring:
/// the model's answer is the number after its last "####" if it wrote one, else the number after
/// its last "answer is", else the last number in the response. Numbers may carry "$", thousands
/// commas, a sign, decimals and a trailing period; they match when numerically equal
/// ("1,000.00" = "1000").
public enum GSM8K {
    private static let number = PythonRegex(literal: #"-?\$?\s?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"#)

    /// The last number in `text`, normalized; nil when there is none.
    public static func lastNumber(in text: String) -> Decimal? {
        guard let last = number.matchedStrings(in: text).last else { return nil }
        return normalize(last)
    }

    /// Parses "$1,234.50", "-7", "-$3", "$-3" into a Decimal.
    static func normalize(_ token: String) -> Decimal? {
        var cleaned = token.filter { !"$, \t\n".contains($0) }
        let negative = cleaned.hasPrefix("-")
        cleaned = cleaned.replacingOccurrences(of: "-", with: "")
        guard !cleaned.isEmpty, var value = Decimal(string: cleaned, locale: Locale(identifier: "en_US_POSIX")) else { return nil }
        if negative { value.negate() }
        return value
    }

    /// The model's final answer in `response`.
    public static func extractAnswer(from response: String) -> Decimal? {
        if let marker = response.range(of: "####", options: .backwards),
           let value = firstNumber(of: String(response[marker.upperBound...])) {
            return value
        }
        let lowered = response.lowercased()
        if let marker = lowered.range(of: "answer is", options: .backwards),
           let value = firstNumber(of: String(lowered[marker.upperBound...])) {
            return value
        }
        return lastNumber(in: response)
    }

    /// The first number in `text` (what follows a marker: "#### 42." → 42).
    private static func firstNumber(of text: String) -> Decimal? {
        number.matchedStrings(in: text).first.flatMap(normalize)
    }

    /// True when the response's final number equals the reference.
    public static func isCorrect(response: String, row: GSM8KRow) throws -> Bool {
        let reference = try row.referenceNumber()
        return extractAnswer(from: response) == reference
    }
}

/// Exact-match accuracy over a GSM8K set.
public struct GSM8KSummary: Codable, Equatable, Sendable {
    public var total = 0
    public var correct = 0
    /// Responses in which no number was found at all.
    public var noAnswer = 0

    public init() {}

    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    public mutating func add(response: String, row: GSM8KRow) throws {
        let reference = try row.referenceNumber()
        total += 1
        guard let answer = GSM8K.extractAnswer(from: response) else {
            noAnswer += 1
            return
        }
        if answer == reference { correct += 1 }
    }

    enum CodingKeys: String, CodingKey {
        case total, correct, accuracy, noAnswer = "no_answer"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        total = try container.decode(Int.self, forKey: .total)
        correct = try container.decode(Int.self, forKey: .correct)
        noAnswer = try container.decode(Int.self, forKey: .noAnswer)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(total, forKey: .total)
        try container.encode(correct, forKey: .correct)
        try container.encode(noAnswer, forKey: .noAnswer)
        try container.encode(accuracy, forKey: .accuracy)
    }
}
