import ArgumentParser
import Client
import Evaluation
import Foundation
import ModelFiles
import Reward
import Tensor
import Training
import Transformer

struct RewardSanityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward-sanity",
        abstract: "Does the coherent reward tell good answers from bad ones? References vs PT and SFT samples vs answers to other prompts.",
        discussion: """
        For each demonstration in --data (held out from SFT: the pipeline uses the in-domain \\
        evaluation tasks with their reference answers) it scores four responses to the same prompt \\
        with the coherent reward log p_SFT(y|x) − log p_PT(y|x) (summed over the response and its \\
        end token, as PPO's EOS placement has it):

          reference   the demonstration's own response
          shuffled    the reference answer of another prompt (the next row's)
          pt          a sample of PT (temperature 1, up to --max-new-tokens)
          sft         a sample of SFT (the same)

        and reports per kind the mean reward, the mean per token and the mean length, and the \\
        separation as AUROC (the probability that the first kind outscores the second): reference vs \\
        shuffled, reference vs pt, sft vs pt, reference vs sft. A reward that knows which answer belongs \\
        to which prompt puts reference above shuffled. Writes --output (JSON, with every row).

        Example:
          srppo reward-sanity --pt SmolLM2-135M-Instruct.Q4_1.gguf --sft runs/sft/model \\
                              --data runs/data/heldout_chat.jsonl --output runs/reward_sanity.json
        """
    )

    @Option(help: "Pretrained model.") var pt: String
    @Option(help: "SFT model (its tokenizer and chat template render the data).") var sft: String
    @Option(help: "Demonstrations not trained on (the `srppo sft` formats).") var data: String
    @Option(help: "JSON results file.") var output: String
    @Option(help: "Most new tokens per sample.") var maxNewTokens = 128
    @Option(help: "Row i samples with seed --seed + i.") var seed: UInt64 = 0
    @OptionGroup var threading: ThreadOptions

    func run() throws {
        threading.apply()
        try CLI.orExit {
            let loadedSFT = try ModelLoader.load(path: sft), ptModel = try ModelLoader.load(path: pt).model
            let sftModel = loadedSFT.model
            guard let encoder = try TextEncoding.promptResponseEncoder(for: loadedSFT) else {
                throw CLI.Failure(description: "\(sft): the SFT model has no tokenizer to render --data with")
            }
            let config = sftModel.config
            let examples = try DataLoader.demonstrations(path: data, encoder: TokenizerRecordEncoder(encoder: encoder),
                                                         limits: .init(vocabularySize: config.vocabSize, maxLength: config.maxPositions))
            guard examples.count >= 2 else { throw CLI.Failure(description: "\(data): needs at least 2 demonstrations (one to shuffle against)") }
            let endTokens = TextEncoding.endTokens(of: sftModel, encoder: encoder)
            // PPO's own sampler, at temperature 1.
            func samples(_ model: LlamaModel) throws -> [[Int32]] {
                try KVCacheSampler().sample(model, prompts: examples.map(\.prompt), seeds: examples.indices.map { seed &+ UInt64($0) },
                                            maxNewTokens: maxNewTokens, temperature: 1, endTokens: endTokens).map(\.tokens)
            }
            var responses: [(RewardSanity.Kind, [[Int32]])] = [(.reference, examples.map(\.response)),
                                                  (.shuffled, examples.indices.map { examples[($0 + 1) % examples.count].response })]
            responses.append((.pt, try samples(ptModel)))
            responses.append((.sft, try samples(sftModel)))
            let scorer = try EmbeddedScorer(pt: ptModel, sft: sftModel)
            var rows: [RewardSanity.Row] = []
            for (kind, answers) in responses {
                let scores = try scorer.score(zip(examples, answers).map { RewardRequest(prompt: $0.prompt, response: $1) })
                for (i, (answer, s)) in zip(answers, scores).enumerated() {
                    let ended = answer.last.map(endTokens.contains) ?? false
                    // The coherent reward's own sum (every placement reports it, truncated or not).
                    let reward = CoherentReward().compute(sft: s.sft, pt: s.pt, endedWithEOS: ended).sum
                    rows.append(RewardSanity.Row(index: i, kind: kind, reward: reward, tokens: answer.count, ended: ended))
                }
            }
            let results = RewardSanity.summarize(rows, data: data)
            let encoderJSON = JSONEncoder()
            encoderJSON.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(encoderJSON.encode(results), to: output)
            var table = TextTable(header: RewardSanity.Results.kindHeader)
            results.kindRows.forEach { table.add($0) }
            print(table.render().joined(separator: "\n"))
            for s in results.separations { print(String(format: "AUROC %@ > %@: %.3f", s.higher.rawValue, s.lower.rawValue, s.auroc)) }
        }
    }
}
