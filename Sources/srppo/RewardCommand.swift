import ArgumentParser
import Client
import Foundation
import ModelFiles
import Reward
import Compute
import Training
import Transformer
import WireProtocol

struct RewardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward",
        abstract: "Coherent rewards: per-token log-probs of responses under PT and SFT, and their difference.",
        discussion: """
        Input is the same JSONL as `srppo score` (ids, plain text or chat; text is encoded with the SFT \
        model's tokenizer, or by the daemon with the same rule). Output is one JSONL line per input line:
        {"pt_logprobs":[…],"sft_logprobs":[…],"reward":…,"ends_with_eos":…,"n":…}, where reward is
        Σ_t (log p_SFT − log p_PT) over the response tokens: the coherent reward PPO places on the
        EOS token. A response whose last token is not an EOS token was cut off; PPO gives it the
        truncation treatment instead (see `srppo ppo --help`).

        With --daemon the models are srppod's (started with the same PT and SFT, the output is the
        same to the bit); without it they are loaded here.

        Examples:
          srppo reward --pt SmolLM2-135M-Instruct.Q4_1.gguf --sft runs/sft/model --input pairs.jsonl
          srppo reward --daemon /run/srppod/http.sock --input pairs.jsonl
        """
    )

    @Option(help: "Pretrained model (without --daemon).") var pt: String?
    @Option(help: "SFT model (without --daemon).") var sft: String?
    @Option(help: "Score with the srppod listening on this HTTP socket instead of loading the models.") var daemon: String?
    @Option(help: "Client name given to the daemon (default: srppo-reward-PID).") var client: String?
    @Option(help: "Input JSONL file (default: standard input).") var input: String?
    @Option(help: "Output JSONL file (default: standard output).") var output: String?
    @OptionGroup var threading: ThreadOptions
    @Option(help: "Weight precision without --daemon: f32 (reference) or bf16 (faster; see `srppo score --help`).")
    var dtype: String = "f32"
    @Flag(help: "Without --daemon: compute a prompt shared by several lines once (equal to float rounding).")
    var sharePrefixes = false

    func validate() throws {
        if daemon != nil {
            guard pt == nil, sft == nil else { throw ValidationError("give either --daemon or --pt and --sft, not both") }
        } else {
            guard pt != nil, sft != nil else { throw ValidationError("give --pt and --sft (or --daemon SOCKET)") }
            guard client == nil else { throw ValidationError("--client needs --daemon") }
        }
        if let client, let problem = WireProtocol.nameProblem(client) { throw ValidationError("--client \(problem)") }
        guard WeightPrecision(rawValue: dtype) != nil else { throw ValidationError("--dtype must be f32 or bf16, got \"\(dtype)\"") }
        if daemon != nil && (dtype != "f32" || sharePrefixes) {
            throw ValidationError("--dtype and --share-prefixes apply to in-process scoring, not --daemon")
        }
    }

    func run() throws {
        threading.apply()
        try CLI.orExit {
            let lines = try JSONLines.read(input)
            let results = try daemon != nil ? scoreThroughDaemon(lines) : scoreInProcess(lines)
            let out = try JSONLines.Writer(path: output)
            for result in results {
                try out.write(["pt_logprobs": result.ptLogprobs.map(Double.init), "sft_logprobs": result.sftLogprobs.map(Double.init),
                               "reward": result.reward, "ends_with_eos": !result.truncated, "n": result.n])
            }
        }
    }

    /// Scores through srppod, which encodes text lines itself.
    private func scoreThroughDaemon(_ lines: [JSONLines.Line]) throws -> [ScoreResult] {
        let items = try lines.map(ScoreItem.init)
        let scorer = try DaemonScorer(socketPath: daemon!, clientName: client ?? "srppo-reward-\(getpid())", retryBudget: 10)
        return try scorer.scoreItems(items)
    }

    private func scoreInProcess(_ lines: [JSONLines.Line]) throws -> [ScoreResult] {
        let loadedSFT = try ModelLoader.load(path: sft!)
        let textEncoder = try TextEncoding.promptResponseEncoder(for: loadedSFT)
        let encoder = textEncoder.map(TokenizerRecordEncoder.init)
        let requests = try lines.map { line in
            let pair = try ScoreInput.parse(line, encoder: encoder)
            return TokenPair(prompt: pair.promptIDs, response: pair.responseIDs)
        }
        return try score(requests, sftModel: loadedSFT.model, endTokens: TextEncoding.endTokens(of: loadedSFT.model, encoder: textEncoder))
    }

    private func score(_ requests: [TokenPair], sftModel: LlamaModel, endTokens: Set<Int32>) throws -> [ScoreResult] {
        let ptModel = pt == sft ? sftModel : try ModelLoader.load(path: pt!).model
        let scorer = try EmbeddedScorer(pt: ptModel, sft: sftModel)
        for model in [ptModel, sftModel] { model.weightPrecision = WeightPrecision(rawValue: dtype)! }
        scorer.sharePrefixes = sharePrefixes
        return try scorer.scoreResults(requests, endTokens: endTokens)
    }
}
