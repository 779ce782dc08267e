import ArgumentParser
import Evaluation
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score responses: IFEval-format instruction following and GSM8K-format math.",
        discussion: """
        Each --responses file is one evaluation set, named after the file. Its rows are JSONL, \
        either IFEval rows {"key","prompt","instruction_id_list","kwargs","response"} or GSM8K \
        rows {"question","answer" ending "#### N","response"}.

        Prints prompt- and instruction-level accuracy, strict and loose, per set and per \
        instruction, and writes them as JSON with --output. Rows using an unsupported \
        instruction (language:response_language) are skipped and counted.

        Examples:
          srppo eval --responses runs/sft/eval_ood.jsonl --output runs/sft/eval.json
          srppo eval --responses data/eval_ood.jsonl --response-field reference
        """
    )

    @Option(help: "JSONL file of rows with a \"response\" field; repeat for several sets.")
    var responses: [String]

    @Option(help: "The field holding the response to score.")
    var responseField = "response"

    @Option(help: "Write the results JSON here.")
    var output: String?

    @Option(help: "Write one JSONL line per row (verdicts, extracted answers) here.")
    var details: String?

    @Option(help: "NLTK punkt_tab language folder for exact IFEval sentence counts (default: built-in English rules).")
    var punkt: String?

    func validate() throws {
        if responses.isEmpty { throw ValidationError("give at least one --responses FILE") }
    }

    func run() throws {
        let scorer = try CLI.orExit { try EvalCommand.scorer(punktDirectory: punkt) }
        var jobs: [EvaluationJob] = []
        for path in responses {
            let lines = try CLI.orExit { try JSONLines.read(path) }
            let set = try CLI.orExit { try EvalInput.parseSet(name: EvalInput.setName(path), lines: lines) }
            let field = responseField
            let stored = try CLI.orExit { try lines.map { try EvalInput.response(in: $0, field: field) } }
            jobs.append(EvaluationJob(set: set, lines: lines) { _ in stored })
        }
        try EvalCommand.evaluate(jobs, scorer: scorer, metadata: ["responses": "from files"], output: output, details: details)
    }

    static func scorer(punktDirectory: String?) throws -> IFEvalScorer {
        guard let punktDirectory else { return IFEvalScorer() }
        return IFEvalScorer(sentenceSplitter: SentenceSplitter(parameters: try PunktParameters(directory: punktDirectory)))
    }

    /// Validates every set, produces and scores the responses, prints the table and writes the
    /// results. Generation (`srppo eval --model`) plugs in as a job whose `respond` runs a model.
    static func evaluate(_ jobs: [EvaluationJob], scorer: IFEvalScorer, metadata: [String: String],
                         output: String?, details: String?) throws {
        for job in jobs {
            try CLI.orExit { try job.withLineNumbers { try Evaluator.validate(job.set, scorer: scorer) } }
        }
        var results = EvaluationResults(metadata: metadata)
        let detailWriter = try details.map { path in try CLI.orExit { try JSONLines.Writer(path: path) } }
        for job in jobs {
            let (result, rows) = try CLI.orExit { try job.withLineNumbers { try Evaluator.evaluate(job.set, scorer: scorer, respond: job.respond) } }
            results.sets.append(result)
            if let detailWriter {
                for row in rows {
                    try CLI.orExit { try detailWriter.write(EvalInput.detailObject(set: job.set.name, row: row)) }
                }
            }
        }
        print(results.renderTable(), terminator: "")
        if let output {
            try CLI.orExit {
                guard FileManager.default.createFile(atPath: output, contents: try results.jsonData()) else {
                    throw CLI.Failure(description: "\(output): cannot write file")
                }
            }
        }
    }
}

/// One set to evaluate, with the lines it came from (for error messages) and where its responses
/// come from.
struct EvaluationJob {
    let set: EvaluationSet
    let lines: [JSONLines.Line]
    let respond: ([String]) throws -> [String]

    /// Runs `body`, turning a row error into "file:line: problem".
    func withLineNumbers<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RowError where error.index < lines.count {
            throw lines[error.index].error("\(error.underlying)")
        }
    }
}

/// Reading evaluation sets from JSONL lines.
enum EvalInput {
    /// "runs/x/eval_ood.responses.jsonl" → "eval_ood".
    static func setName(_ path: String) -> String {
        let file = (path as NSString).lastPathComponent
        return String(file.split(separator: ".").first ?? Substring(file))
    }

    /// An IFEval set when the first row has "instruction_id_list", a GSM8K set when it has
    /// "question"; every row must then be of that kind.
    static func parseSet(name: String, lines: [JSONLines.Line]) throws -> EvaluationSet {
        guard let first = lines.first else { throw CLI.Failure(description: "\(name): no rows") }
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
    static func response(in line: JSONLines.Line, field: String) throws -> String {
        guard let object = (try? JSONSerialization.jsonObject(with: line.data)) as? [String: Any] else {
            throw line.error("not a JSON object")
        }
        guard let value = object[field] else { throw line.error("missing field \"\(field)\"") }
        guard let text = value as? String else { throw line.error("field \"\(field)\" is not a string") }
        return text
    }

    static func detailObject(set: String, row: RowResult) throws -> [String: Any] {
        let data = try JSONEncoder().encode(row)
        var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        object["set"] = set
        return object
    }
}
