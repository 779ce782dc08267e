import ArgumentParser
import Client
import Foundation
import Reward
import Tensor
import Transformer

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

        Example:
          srppo reward --pt SmolLM2-135M-Instruct.Q4_1.gguf --sft runs/sft/model --input pairs.jsonl
        """
    )

    @Option(help: "Pretrained model.") var pt: String
    @Option(help: "SFT model.") var sft: String
    @Option(help: "Input JSONL file (default: standard input).") var input: String?
    @Option(help: "Output JSONL file (default: standard output).") var output: String?
    @Option(help: "Worker threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.threads = threads }
        try CLI.orExit {
            let ptModel = try ModelLoader.load(path: pt).model
            let sftModel = try ModelLoader.load(path: sft).model
            let scorer = try EmbeddedScorer(pt: ptModel, sft: sftModel)
            let eos = Set(sftModel.config.eosTokenIds.map { Int32($0) })
            let requests = try JSONLines.read(input).map { line in
                let pair = try ScoreInput.parse(line)
                return RewardRequest(prompt: pair.promptIDs, response: pair.responseIDs)
            }
            let out = try JSONLines.Writer(path: output)
            for (request, scores) in zip(requests, try scorer.score(requests)) {
                let sum = zip(scores.sft, scores.pt).reduce(0.0) { $0 + Double($1.0) - Double($1.1) }
                try out.write(["pt_logprobs": scores.pt.map(Double.init), "sft_logprobs": scores.sft.map(Double.init),
                               "reward": sum, "ends_with_eos": request.response.last.map(eos.contains) ?? false,
                               "n": request.response.count])
            }
        }
    }
}
