import ArgumentParser
import Client
import Evaluation
import Foundation
import ModelFiles
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
            let results = try RewardSanity.measure(examples, data: data, pt: ptModel, sft: sftModel,
                                                   scorer: try EmbeddedScorer(pt: ptModel, sft: sftModel),
                                                   endTokens: TextEncoding.endTokens(of: sftModel, encoder: encoder),
                                                   maxNewTokens: maxNewTokens, seed: seed)
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
