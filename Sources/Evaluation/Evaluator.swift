import Foundation

/// An evaluation set: IFEval-format instruction rows or GSM8K-format math rows.
public enum EvaluationSet: Sendable {
    case ifeval(name: String, rows: [IFEvalRow])
    case gsm8k(name: String, rows: [GSM8KRow])

    public var name: String {
        switch self {
        case .ifeval(let name, _), .gsm8k(let name, _): return name
        }
    }

    /// The prompts a model answers, in row order (GSM8K: the question).
    public var prompts: [String] {
        switch self {
        case .ifeval(_, let rows): return rows.map(\.prompt)
        case .gsm8k(_, let rows): return rows.map(\.question)
        }
    }
}

/// What happened to one row.
public struct RowResult: Codable, Equatable, Sendable {
    public var index: Int
    public var key: Int?
    public var prompt: String
    public var response: String
    /// IFEval rows: the verdicts, or the unsupported ids when the row was skipped.
    public var verdict: IFEvalVerdict?
    public var unsupported: [String]?
    /// GSM8K rows.
    public var reference: String?
    public var extracted: String?
    public var correct: Bool?

    init(index: Int, key: Int?, prompt: String, response: String) {
        self.index = index
        self.key = key
        self.prompt = prompt
        self.response = response
    }
}

/// A problem with one row, with the row's index so the caller can name its line.
public struct RowError: Error, CustomStringConvertible {
    public let index: Int
    public let underlying: Error
    public var description: String { "row \(index + 1): \(underlying)" }

    public init(index: Int, underlying: Error) {
        self.index = index
        self.underlying = underlying
    }
}

/// Scores one set. Responses come from `respond`, which receives every prompt of the set at once
/// (so a model can generate in batches) and returns one response per prompt; scoring stored
/// responses passes a closure that returns them.
public enum Evaluator {
    public static func evaluate(_ set: EvaluationSet, scorer: IFEvalScorer = IFEvalScorer(),
                                respond: ([String]) throws -> [String]) throws -> (result: SetResult, rows: [RowResult]) {
        let prompts = set.prompts
        let responses = try respond(prompts)
        precondition(responses.count == prompts.count, "respond returned \(responses.count) responses for \(prompts.count) prompts")
        var result = SetResult(name: set.name, responses: responses)
        var rows: [RowResult] = []
        switch set {
        case .ifeval(_, let inputs):
            var summary = IFEvalSummary()
            for (index, (row, response)) in zip(inputs, responses).enumerated() {
                var record = RowResult(index: index, key: row.key, prompt: row.prompt, response: response)
                do {
                    if let verdict = try scorer.score(row, response: response) {
                        summary.add(verdict)
                        record.verdict = verdict
                    } else {
                        let unsupported = scorer.unsupportedIDs(in: row)
                        summary.addSkipped(unsupported: unsupported)
                        record.unsupported = unsupported
                    }
                } catch {
                    throw RowError(index: index, underlying: error)
                }
                rows.append(record)
            }
            result.ifeval = summary
        case .gsm8k(_, let inputs):
            var summary = GSM8KSummary()
            for (index, (row, response)) in zip(inputs, responses).enumerated() {
                var record = RowResult(index: index, key: nil, prompt: row.question, response: response)
                do {
                    try summary.add(response: response, row: row)
                    let reference = try row.referenceNumber()
                    let extracted = GSM8K.extractAnswer(from: response)
                    record.reference = "\(reference)"
                    record.extracted = extracted.map { "\($0)" }
                    record.correct = extracted == reference
                } catch {
                    throw RowError(index: index, underlying: error)
                }
                rows.append(record)
            }
            result.gsm8k = summary
        }
        return (result, rows)
    }

    /// Checks every row's instructions and arguments without scoring anything, so that bad input
    /// is reported before a model spends time on it.
    public static func validate(_ set: EvaluationSet, scorer: IFEvalScorer = IFEvalScorer()) throws {
        switch set {
        case .ifeval(_, let rows):
            for (index, row) in rows.enumerated() {
                do { _ = try scorer.instructions(for: row) } catch { throw RowError(index: index, underlying: error) }
            }
        case .gsm8k(_, let rows):
            for (index, row) in rows.enumerated() {
                do { _ = try row.referenceNumber() } catch { throw RowError(index: index, underlying: error) }
            }
        }
    }
}
