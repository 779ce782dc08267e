import Foundation
import ModelFiles

/// One set to evaluate, with the lines it came from (for error messages) and where its responses
/// come from.
public struct EvaluationJob {
    public let set: EvaluationSet
    public let lines: [JSONLines.Line]
    public let respond: ([String]) throws -> [String]

    public init(set: EvaluationSet, lines: [JSONLines.Line], respond: @escaping ([String]) throws -> [String]) {
        self.set = set
        self.lines = lines
        self.respond = respond
    }

    /// The set read from a JSONL file, named after it; `respond` gives its responses.
    public init(file: String, respond: @escaping (EvaluationSet, [String]) throws -> [String]) throws {
        let (set, lines) = try EvaluationInput.readSet(file)
        self.init(set: set, lines: lines) { try respond(set, $0) }
    }

    /// The set read from a JSONL file, named after it, with the responses its rows hold in `field`.
    public static func storedResponses(in file: String, field: String) throws -> EvaluationJob {
        let (set, lines) = try EvaluationInput.readSet(file)
        let stored = try lines.map { try EvaluationInput.response(in: $0, field: field) }
        return EvaluationJob(set: set, lines: lines) { _ in stored }
    }

    /// Runs `body`, turning a row error into "file:line: problem".
    private func withLineNumbers<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RowError where error.index < lines.count {
            throw lines[error.index].error("\(error.underlying)")
        }
    }

    /// Checks every row of the set before anything is generated or scored.
    public func validate(scorer: IFEvalScorer) throws {
        try withLineNumbers { try Evaluator.validate(set, scorer: scorer) }
    }

    /// Produces the set's responses and scores them.
    public func evaluate(scorer: IFEvalScorer) throws -> (SetResult, [RowResult]) {
        try withLineNumbers { try Evaluator.evaluate(set, scorer: scorer, respond: respond) }
    }
}

/// Reading evaluation sets from JSONL lines.
public enum EvaluationInput {
    /// "runs/x/eval_ood.responses.jsonl" → "eval_ood".
    public static func setName(_ path: String) -> String {
        let file = (path as NSString).lastPathComponent
        return String(file.split(separator: ".").first ?? Substring(file))
    }

    /// The set in a JSONL file, named after it, with its lines.
    public static func readSet(_ file: String) throws -> (EvaluationSet, [JSONLines.Line]) {
        let lines = try JSONLines.read(file)
        return (try parseSet(name: setName(file), lines: lines), lines)
    }

    /// An IFEval set when the first row has "instruction_id_list", a GSM8K set when it has
    /// "question"; every row must then be of that kind.
    public static func parseSet(name: String, lines: [JSONLines.Line]) throws -> EvaluationSet {
        guard let first = lines.first else { throw JSONLinesError(source: name, line: nil, problem: "no rows") }
        let probe = (try? JSONSerialization.jsonObject(with: first.data)) as? [String: Any] ?? [:]
        if probe["instruction_id_list"] != nil {
            return .ifeval(name: name, rows: try lines.map { try $0.decode(IFEvalRow.self) })
        }
        if probe["question"] != nil {
            return .gsm8k(name: name, rows: try lines.map { try $0.decode(GSM8KRow.self) })
        }
        throw first.error("neither an IFEval row (\"instruction_id_list\") nor a GSM8K row (\"question\")")
    }

    /// The string in `field` of a row.
    public static func response(in line: JSONLines.Line, field: String) throws -> String {
        guard let object = (try? JSONSerialization.jsonObject(with: line.data)) as? [String: Any] else {
            throw line.error("not a JSON object")
        }
        guard let value = object[field] else { throw line.error("missing field \"\(field)\"") }
        guard let text = value as? String else { throw line.error("field \"\(field)\" is not a string") }
        return text
    }

    /// A row's verdicts as one line of `srppo eval --details`, tagged with its set.
    public static func detailObject(set: String, row: RowResult) throws -> [String: Any] {
        let data = try JSONEncoder().encode(row)
        var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        object["set"] = set
        return object
    }
}

extension IFEvalScorer {
    /// With NLTK's punkt_tab parameters from `punktDirectory` for exact IFEval sentence counts, or
    /// the built-in English rules when nil.
    public init(punktDirectory: String?) throws {
        guard let punktDirectory else {
            self.init()
            return
        }
        self.init(sentenceSplitter: SentenceSplitter(parameters: try PunktParameters(directory: punktDirectory)))
    }
}
