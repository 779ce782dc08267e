import ArgumentParser
import Client
import Foundation
import Reward
import Tensor
import Transformer
import WireProtocol

struct RewardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward",
        abstract: "Coherent rewards: per-token log-probs of responses under PT and SFT, and their difference.",
        discussion: """
        Input is the same JSONL as `srppo score`. Output is one JSONL line per input line:
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
    @Option(help: "Worker threads (default: all cores; without --daemon).") var threads: Int?

    func validate() throws {
        if daemon != nil {
            guard pt == nil, sft == nil else { throw ValidationError("give either --daemon or --pt and --sft, not both") }
        } else {
            guard pt != nil, sft != nil else { throw ValidationError("give --pt and --sft (or --daemon SOCKET)") }
            guard client == nil else { throw ValidationError("--client needs --daemon") }
        }
        if let client, let problem = WireProtocol.nameProblem(client) { throw ValidationError("--client \(problem)") }
    }

    func run() throws {
        if let threads { Parallel.threads = threads }
        try CLI.orExit {
            let requests = try JSONLines.read(input).map { line in
                let pair = try ScoreInput.parse(line)
                return RewardRequest(prompt: pair.promptIDs, response: pair.responseIDs)
            }
            let results = try score(requests)
            let out = try JSONLines.Writer(path: output)
            for result in results {
                try out.write(["pt_logprobs": result.ptLogprobs.map(Double.init), "sft_logprobs": result.sftLogprobs.map(Double.init),
                               "reward": result.reward, "ends_with_eos": !result.truncated, "n": result.n])
            }
        }
    }

    private func score(_ requests: [RewardRequest]) throws -> [ScoreResult] {
        if let daemon {
            let scorer = try DaemonScorer(socketPath: daemon, clientName: client ?? "srppo-reward-\(getpid())", retryBudget: 10)
            return try scorer.scoreResults(requests)
        }
        let ptModel = try ModelLoader.load(path: pt!).model
        let sftModel = try ModelLoader.load(path: sft!).model
        let scorer = try EmbeddedScorer(pt: ptModel, sft: sftModel)
        let eos = Set(sftModel.config.eosTokenIds.map { Int32($0) })
        return zip(requests, try scorer.score(requests)).map { request, scores in
            ScoreResult(ptLogprobs: scores.pt, sftLogprobs: scores.sft, truncated: !(request.response.last.map(eos.contains) ?? false))
        }
    }
}
