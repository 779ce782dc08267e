import ArgumentParser
import Evaluation
import Foundation
import ModelFiles
import Compute
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
        let scorer = try CLI.orExit { try IFEvalScorer(punktDirectory: punkt) }
        if let model {
            try runModel(model, scorer: scorer)
            return
        }
        let jobs = try responses.map { path in try CLI.orExit { try EvaluationJob.storedResponses(in: path, field: responseField) } }
        try EvalCommand.evaluate(jobs, scorer: scorer, metadata: ["responses": "from files"], output: output, details: details)
    }

    /// Generates for every --set with the model, scores, and adds held-out NLL.
    private func runModel(_ path: String, scorer: IFEvalScorer) throws {
        threading.apply()
        let loaded = try CLI.orExit { try ModelLoader.load(path: path) }
        let responder = try CLI.orExit {
            try EvaluationResponder(loaded, path: path, chat: promptFormat == "chat", sampling: SamplingParameters(temperature: temperature, topP: topP),
                                    maxNewTokens: maxNewTokens, firstSeed: seed, batchSize: batchSize)
        }
        let jobs = try sets.map { file in
            try CLI.orExit {
                try EvaluationJob(file: file) { set, prompts in
                    let started = Date()
                    let (responses, tokens) = try responder.respond(set: set.name, prompts: prompts)
                    FileHandle.standardError.write(Data(String(format: "eval: %@: %d responses, %d tokens in %.1f s\n", set.name,
                                                               responses.count, tokens, Date().timeIntervalSince(started)).utf8))
                    return responses
                }
            }
        }
        let nllResults = try nll.map { file in try CLI.orExit { try responder.negativeLogLikelihood(of: file) } }
        var metadata = ["model": path, "prompt_format": promptFormat, "max_new_tokens": "\(maxNewTokens)",
                        "seeds": "row i uses \(seed) + i"]
        metadata["decoding"] = temperature == 0 ? "greedy" : "temperature \(temperature), top-p \(topP)"
        try EvalCommand.evaluate(jobs, scorer: scorer, metadata: metadata, output: output, details: details, nll: nllResults) { result in
            result.generation = responder.generation[result.name]
        }
    }

    /// Validates every set, produces and scores the responses, prints the table and writes the
    /// results. Generation (`srppo eval --model`) plugs in as a job whose `respond` runs a model.
    static func evaluate(_ jobs: [EvaluationJob], scorer: IFEvalScorer, metadata: [String: String],
                         output: String?, details: String?, nll: [NLLResult] = [],
                         annotate: (inout SetResult) -> Void = { _ in }) throws {
        for job in jobs {
            try CLI.orExit { try job.validate(scorer: scorer) }
        }
        var results = EvaluationResults(metadata: metadata, nll: nll.isEmpty ? nil : nll)
        let detailWriter = try details.map { path in try CLI.orExit { try JSONLines.Writer(path: path) } }
        for job in jobs {
            var (result, rows) = try CLI.orExit { try job.evaluate(scorer: scorer) }
            annotate(&result)
            results.sets.append(result)
            if let detailWriter {
                for row in rows {
                    try CLI.orExit { try detailWriter.write(EvaluationInput.detailObject(set: job.set.name, row: row)) }
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
