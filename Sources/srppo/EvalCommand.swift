import ArgumentParser
import Evaluation
import Foundation
import ModelFiles
import Tensor
import Tokenizer
import Training
import Transformer

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model, or stored responses: IFEval-format instruction following, GSM8K-format math, held-out NLL.",
        discussion: """
        Each --responses file is one evaluation set, named after the file. Its rows are JSONL, \
        either IFEval rows {"key","prompt","instruction_id_list","kwargs","response"} or GSM8K \
        rows {"question","answer" ending "#### N","response"}.

        With --model, the model answers instead: each --set file (the same rows without \
        "response") is generated for, every prompt as one user turn of the model's chat template \
        (--prompt-format plain: the text as is). A response ends at the model's EOS or its chat \
        template's end-of-turn token, whichever comes first. Decoding is greedy unless --temperature is given; \
        row i uses seed --seed + i, and the seeds, lengths, EOS and truncation rates are recorded. \
        --nll FILE adds the mean negative log-likelihood per response token of demonstrations \
        (the `srppo sft` formats) under the model.

        Prints prompt- and instruction-level accuracy, strict and loose, per set and per \
        instruction, and writes them as JSON with --output. Rows using an unsupported \
        instruction (language:response_language) are skipped and counted.

        Examples:
          srppo eval --responses runs/sft/eval_ood.jsonl --output runs/sft/eval.json
          srppo eval --responses data/eval_ood.jsonl --response-field reference
          srppo eval --model runs/sft/model --set data/eval_ood.jsonl --nll data/heldout_demos.jsonl \\
                     --output runs/sft/eval.json --details runs/sft/eval_rows.jsonl
        """
    )

    @Option(help: "JSONL file of rows with a \"response\" field; repeat for several sets.")
    var responses: [String] = []

    @Option(help: "Model that generates the responses: GGUF file, safetensors file or Hugging Face folder.")
    var model: String?

    @Option(name: .customLong("set"), help: "With --model: JSONL evaluation set to generate for; repeat for several.")
    var sets: [String] = []

    @Option(help: "With --model: demonstrations (JSONL) whose mean NLL per response token to report; repeatable.")
    var nll: [String] = []

    @Option(help: "How prompts reach the model: chat (one user turn of its chat template) or plain.")
    var promptFormat = "chat"

    @Option(help: "Sampling temperature (default 0: greedy).")
    var temperature: Double = 0

    @Option(help: "Nucleus sampling threshold when sampling.")
    var topP: Double = 1

    @Option(help: "Seed of row 0; row i uses seed + i.")
    var seed: UInt64 = 0

    @Option(help: "Most new tokens per response; longer ones are cut off (counted as truncated).")
    var maxNewTokens: Int = 256

    @Option(help: "Sequences decoded (and demonstrations scored) together.")
    var batchSize: Int = 8

    @OptionGroup var threading: ThreadOptions

    @Option(help: "The field holding the response to score.")
    var responseField = "response"

    @Option(help: "Write the results JSON here.")
    var output: String?

    @Option(help: "Write one JSONL line per row (verdicts, extracted answers) here.")
    var details: String?

    @Option(help: "NLTK punkt_tab language folder for exact IFEval sentence counts (default: built-in English rules).")
    var punkt: String?

    func validate() throws {
        if model == nil {
            if responses.isEmpty { throw ValidationError("give at least one --responses FILE, or --model with --set/--nll") }
            if !sets.isEmpty || !nll.isEmpty { throw ValidationError("--set and --nll need --model") }
        } else {
            if sets.isEmpty && nll.isEmpty { throw ValidationError("--model needs at least one --set or --nll FILE") }
            if !responses.isEmpty { throw ValidationError("--responses scores stored responses: leave out --model, or use --set") }
        }
        guard ["chat", "plain"].contains(promptFormat) else { throw ValidationError("--prompt-format must be chat or plain") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1") }
        do { try SamplingParameters(temperature: temperature, topP: topP).validate() } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let scorer = try CLI.orExit { try EvalCommand.scorer(punktDirectory: punkt) }
        if let model {
            try runModel(model, scorer: scorer)
            return
        }
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

    /// Generates for every --set with the model, scores, and adds held-out NLL.
    private func runModel(_ path: String, scorer: IFEvalScorer) throws {
        threading.apply()
        let loaded = try CLI.orExit { try ModelLoader.load(path: path) }
        let tokenizer = try CLI.orExit { () throws -> BPETokenizer in
            guard let tokenizer = try TextEncoding.tokenizer(for: loaded) else {
                throw CLI.Failure(description: "\(path): the model has no tokenizer, and evaluation works on text")
            }
            return tokenizer
        }
        let encoder = try CLI.orExit { try PromptResponseEncoder(tokenizer: tokenizer) }
        if promptFormat == "chat" { _ = try CLI.orExit { try encoder.chatTemplate() } }
        let config = loaded.model.config
        let endTokens = TextEncoding.endTokens(of: loaded.model, encoder: encoder)
        let sampling = SamplingParameters(temperature: temperature, topP: topP)
        let chat = promptFormat == "chat", maxNew = maxNewTokens, firstSeed = seed, batch = batchSize
        var generation: [String: GenerationSummary] = [:]
        var jobs: [EvaluationJob] = []
        for file in sets {
            let lines = try CLI.orExit { try JSONLines.read(file) }
            let set = try CLI.orExit { try EvalInput.parseSet(name: EvalInput.setName(file), lines: lines) }
            jobs.append(EvaluationJob(set: set, lines: lines) { prompts in
                let requests = try prompts.enumerated().map { i, text -> GenerationRequest in
                    let ids = chat ? try encoder.encodePrompt(messages: [ChatMessage(role: "user", content: text)]) : encoder.encodePrompt(text)
                    let request = GenerationRequest(prompt: ids, maxNewTokens: maxNew, sampling: sampling, seed: firstSeed &+ UInt64(i),
                                                    endTokens: endTokens)
                    do { try request.validate(for: config) } catch { throw RowError(index: i, underlying: error) }
                    return request
                }
                let started = Date()
                let results = try Generator(model: loaded.model, maxBatch: batch).generate(requests)
                let tokens = results.map(\.tokens.count)
                generation[set.name] = GenerationSummary(tokens: tokens, endedWithEOS: results.map { $0.finishReason == .eos },
                                                         firstSeed: firstSeed)
                FileHandle.standardError.write(Data(String(format: "eval: %@: %d responses, %d tokens in %.1f s\n", set.name,
                                                           results.count, tokens.reduce(0, +), Date().timeIntervalSince(started)).utf8))
                return results.map { tokenizer.decode($0.tokens, skippingSpecialTokens: true) }
            })
        }
        var nllResults: [NLLResult] = []
        for file in nll {
            let examples = try CLI.orExit {
                try DataLoader.demonstrations(path: file, encoder: TokenizerRecordEncoder(encoder: encoder),
                                              limits: .init(vocabularySize: config.vocabSize, maxLength: config.maxPositions))
            }
            let mean = try CLI.orExit { try SFTTrainer.meanNegativeLogLikelihood(loaded.model, examples, batchSize: batch) }
            nllResults.append(NLLResult(name: EvalInput.setName(file), examples: examples.count,
                                        tokens: examples.reduce(0) { $0 + $1.response.count }, meanNLL: mean))
        }
        var metadata = ["model": path, "prompt_format": promptFormat, "max_new_tokens": "\(maxNewTokens)",
                        "seeds": "row i uses \(seed) + i"]
        metadata["decoding"] = temperature == 0 ? "greedy" : "temperature \(temperature), top-p \(topP)"
        try EvalCommand.evaluate(jobs, scorer: scorer, metadata: metadata, output: output, details: details, nll: nllResults) { result in
            result.generation = generation[result.name]
        }
    }

    static func scorer(punktDirectory: String?) throws -> IFEvalScorer {
        guard let punktDirectory else { return IFEvalScorer() }
        return IFEvalScorer(sentenceSplitter: SentenceSplitter(parameters: try PunktParameters(directory: punktDirectory)))
    }

    /// Validates every set, produces and scores the responses, prints the table and writes the
    /// results. Generation (`srppo eval --model`) plugs in as a job whose `respond` runs a model.
    static func evaluate(_ jobs: [EvaluationJob], scorer: IFEvalScorer, metadata: [String: String],
                         output: String?, details: String?, nll: [NLLResult] = [],
                         annotate: (inout SetResult) -> Void = { _ in }) throws {
        for job in jobs {
            try CLI.orExit { try job.withLineNumbers { try Evaluator.validate(job.set, scorer: scorer) } }
        }
        var results = EvaluationResults(metadata: metadata, nll: nll.isEmpty ? nil : nll)
        let detailWriter = try details.map { path in try CLI.orExit { try JSONLines.Writer(path: path) } }
        for job in jobs {
            var (result, rows) = try CLI.orExit { try job.withLineNumbers { try Evaluator.evaluate(job.set, scorer: scorer, respond: job.respond) } }
            annotate(&result)
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
