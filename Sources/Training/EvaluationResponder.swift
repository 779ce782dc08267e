import Evaluation
import Tokenizer
import Transformer

/// A model answering evaluation sets (`srppo eval --model`): every prompt as one user turn of its
/// chat template (or as plain text), generated in batches; a response ends at the model's EOS or its
/// chat template's end-of-turn token. Row i uses seed `firstSeed` + i. Also the mean NLL of
/// held-out demonstrations under the model.
public final class EvaluationResponder {
    /// The model has no tokenizer, and evaluation works on text.
    public struct NoTokenizer: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "\(path): the model has no tokenizer, and evaluation works on text" }
    }

    public let model: LlamaModel
    public let encoder: PromptResponseEncoder
    public let endTokens: Set<Int32>
    public let chat: Bool
    public let sampling: SamplingParameters
    public let maxNewTokens: Int
    public let firstSeed: UInt64
    /// Sequences decoded (and demonstrations scored) together.
    public let batchSize: Int
    /// How each set's responses were generated, by set name, once generated.
    public private(set) var generation: [String: GenerationSummary] = [:]

    /// `path` names the model in errors. With `chat`, the model's chat template must load.
    public init(_ loaded: LoadedModel, path: String, chat: Bool, sampling: SamplingParameters, maxNewTokens: Int, firstSeed: UInt64,
                batchSize: Int) throws {
        guard let tokenizer = try TextEncoding.tokenizer(for: loaded) else { throw NoTokenizer(path: path) }
        encoder = try PromptResponseEncoder(tokenizer: tokenizer)
        if chat { _ = try encoder.chatTemplate() }
        model = loaded.model
        endTokens = TextEncoding.endTokens(of: loaded.model, encoder: encoder)
        (self.chat, self.sampling, self.maxNewTokens, self.firstSeed, self.batchSize) = (chat, sampling, maxNewTokens, firstSeed, batchSize)
    }

    /// The responses to `prompts`, decoded without special tokens, and how many tokens they took;
    /// records the set's generation summary.
    public func respond(set name: String, prompts: [String]) throws -> (responses: [String], tokens: Int) {
        let requests = try prompts.enumerated().map { i, text -> GenerationRequest in
            let ids = chat ? try encoder.encodePrompt(messages: [ChatMessage(role: "user", content: text)]) : encoder.encodePrompt(text)
            let request = GenerationRequest(prompt: ids, maxNewTokens: maxNewTokens, sampling: sampling, seed: firstSeed &+ UInt64(i),
                                            endTokens: endTokens)
            do { try request.validate(for: model.config) } catch { throw RowError(index: i, underlying: error) }
            return request
        }
        let results = try Generator(model: model, maxBatch: batchSize).generate(requests)
        let tokens = results.map(\.tokens.count)
        generation[name] = GenerationSummary(tokens: tokens, endedWithEOS: results.map { $0.finishReason == .eos }, firstSeed: firstSeed)
        return (results.map { encoder.tokenizer.decode($0.tokens, skippingSpecialTokens: true) }, tokens.reduce(0, +))
    }

    /// The mean negative log-likelihood per response token of the demonstrations in `file` (the
    /// `srppo sft` formats), named after the file.
    public func negativeLogLikelihood(of file: String) throws -> NLLResult {
        let examples = try DataLoader.demonstrations(path: file, encoder: TokenizerRecordEncoder(encoder: encoder),
                                                     limits: .init(vocabularySize: model.config.vocabSize, maxLength: model.config.maxPositions))
        let mean = try SFTTrainer.meanNegativeLogLikelihood(model, examples, batchSize: batchSize)
        return NLLResult(name: EvaluationInput.setName(file), examples: examples.count,
                         tokens: examples.reduce(0) { $0 + $1.tokens.response.count }, meanNLL: mean)
    }
}
