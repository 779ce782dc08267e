import Foundation
import Tokenizer
import WireProtocol

/// The daemon's tokenizer: text and chat score items, `/v1/tokenize`, `/v1/detokenize` and the
/// query splitting of `/get_reward`. Text becomes ids by `PromptResponseEncoder`'s rule, the one
/// `srppo score` and the trainers use, so a text request scores exactly the ids `srppo` would.
public final class TextCodec: @unchecked Sendable {
    public let encoder: PromptResponseEncoder
    public var tokenizer: BPETokenizer { encoder.tokenizer }
    /// Where the tokenizer was read from.
    public let source: String
    /// Token ids that end a response (`PromptResponseEncoder.endTokens`).
    let stopIDs: Set<Int32>

    public init(encoder: PromptResponseEncoder, source: String, modelEOS: [Int]) {
        self.encoder = encoder
        self.source = source
        stopIDs = encoder.endTokens(modelEOS: modelEOS)
    }

    /// The tokenizer of the first of `paths` that has one (a GGUF with tokenizer metadata, a Hugging
    /// Face folder with tokenizer.json); nil when none has.
    static func load(from paths: [String], chatTemplateFile: String?, modelEOS: [Int], log: DaemonLog) -> TextCodec? {
        for path in paths {
            do {
                let tokenizer = try BPETokenizer(modelPath: path)
                let encoder = try PromptResponseEncoder(tokenizer: tokenizer, chatTemplateFile: chatTemplateFile)
                return TextCodec(encoder: encoder, source: path, modelEOS: modelEOS)
            } catch {
                log.debug("no tokenizer in \(path): \(error)")
            }
        }
        return nil
    }

    public var description: TokenizerDescription {
        let template = try? encoder.chatTemplate()
        return TokenizerDescription(source: source, vocabSize: tokenizer.vocabularySize, bosTokenId: tokenizer.bosTokenId,
                                    eosTokenId: tokenizer.eosTokenId, addsBos: tokenizer.addsBOS, chatTemplate: template != nil,
                                    endOfTurn: template?.endOfTurn)
    }

    // MARK: Score items

    /// A text or chat item as (prompt ids, response ids); `path` names it in errors.
    package func encode(_ item: ScoreItem, at path: String) throws -> (prompt: [Int32], response: [Int32]) {
        if item.promptIDs != nil || item.responseIDs != nil {
            throw ErrorResponse(.badRequest, "\(path): give token ids (\"prompt_ids\", \"response_ids\") or text (\"prompt\"/\"messages\", \"response\"), not both",
                                field: path)
        }
        if item.prompt != nil && item.messages != nil {
            throw ErrorResponse(.badRequest, "\(path): give \"prompt\" or \"messages\", not both", field: path)
        }
        do {
            return try encoder.encodePair(prompt: item.prompt, messages: item.messages, response: item.response)
        } catch let problem as PromptResponseEncoder.RecordProblem {
            throw ErrorResponse(.badRequest, "\(path): \(problem)", field: path)
        } catch {
            throw ErrorResponse(.textUnsupported, "\(path): \(error)", field: path)
        }
    }

    // MARK: Tokenize / detokenize

    package func tokenize(_ request: TokenizeRequest) throws -> TokenizeResponse {
        switch (request.text, request.messages) {
        case let (text?, nil):
            if request.addGenerationPrompt != nil {
                throw ErrorResponse(.badRequest, "\"add_generation_prompt\" applies to \"messages\" only", field: "add_generation_prompt")
            }
            return TokenizeResponse(ids: tokenizer.encode(text).map(Int.init), text: nil)
        case let (nil, messages?):
            let template: ChatTemplate
            do {
                template = try encoder.chatTemplate()
            } catch {
                throw ErrorResponse(.textUnsupported, "\(error)", field: "messages")
            }
            let rendered = template.render(messages, addGenerationPrompt: request.addGenerationPrompt ?? false)
            return TokenizeResponse(ids: tokenizer.encode(rendered).map(Int.init), text: rendered)
        default:
            throw ErrorResponse(.badRequest, "give exactly one of \"text\" and \"messages\"")
        }
    }

    package func detokenize(_ request: DetokenizeRequest) throws -> DetokenizeResponse {
        if let position = request.ids.firstIndex(where: { $0 < 0 || $0 >= tokenizer.vocabularySize }) {
            throw ErrorResponse(.invalidToken, "ids[\(position)]: token id \(request.ids[position]) is outside the vocabulary (0..<\(tokenizer.vocabularySize))",
                                field: "ids.\(position)")
        }
        return DetokenizeResponse(text: tokenizer.decode(request.ids.map(Int32.init), skippingSpecialTokens: request.skipSpecialTokens ?? false))
    }

    // MARK: OpenRLHF queries

    /// Splits one OpenRLHF query (prompt and response decoded as one string, special tokens kept,
    /// maybe padded on either side) into prompt and response ids.
    ///
    /// - With `prompt`: the response is the text after the first occurrence of `prompt` in the query
    ///   (text before it, left padding, is dropped). A query without its prompt may hold the prompt's
    ///   end only: OpenRLHF (v0.11) cuts a prompt longer than its budget from the left, token-wise,
    ///   before generating. Then the query as given is scored, split after the chat template's
    ///   generation prompt, and `promptCut` says so (`cutPromptEnd`).
    /// - Without `prompt`: the text after the last assistant generation prompt of the chat template
    ///   (`<|im_start|>assistant\n` for ChatML).
    /// - Prompt ids: the prompt text encoded, BOS first when the model wants one and the text lacks it.
    /// - Response ids: the rest encoded; trailing padding tokens dropped, and everything after the
    ///   first EOS / end-of-turn token (padding that is the EOS token). Without one it was cut off.
    package func splitQuery(_ query: String, prompt: String?, at path: String) throws -> (prompt: [Int32], response: [Int32], promptCut: Bool) {
        let promptText: Substring, responseText: Substring
        var promptCut = false
        if let prompt, !prompt.isEmpty, let range = query.range(of: prompt) {
            promptText = query[range]
            responseText = query[range.upperBound...]
        } else if let prompt {
            guard !prompt.isEmpty, let end = cutPromptEnd(in: query, prompt: prompt) else {
                throw ErrorResponse(.badRequest, "\(path): the query holds neither its prompt (prompts[\(path.split(separator: ".").last ?? "")]) nor, after a cut prompt, the chat template's assistant generation prompt",
                                    field: path)
            }
            promptText = query[..<end]
            responseText = query[end...]
            promptCut = true
        } else {
            guard let end = generationPromptEnds(in: query).last else {
                throw ErrorResponse(.badRequest, "\(path): without \"prompts\", the query must contain the chat template's assistant generation prompt",
                                    field: path)
            }
            promptText = query[..<end]
            responseText = query[end...]
        }
        var promptIDs = tokenizer.encode(String(promptText))
        if tokenizer.addsBOS, let bos = tokenizer.bosTokenId.map(Int32.init), promptIDs.first != bos { promptIDs.insert(bos, at: 0) }
        var responseIDs = tokenizer.encode(String(responseText))
        if let pad = tokenizer.padTokenId.map(Int32.init), !stopIDs.contains(pad) {
            while responseIDs.last == pad { responseIDs.removeLast() }
        }
        if let stop = responseIDs.firstIndex(where: stopIDs.contains) { responseIDs.removeSubrange((stop + 1)...) }
        return (promptIDs, responseIDs, promptCut)
    }

    /// Where the prompt ends in a query that starts inside its prompt (the prompt was cut from the
    /// left): after the first generation prompt up to which the query is the end of `prompt` (what a
    /// cut keeps), else after the last one (a cut inside a multi-byte character leaves U+FFFD at the
    /// start, so the comparison can fail). nil when the query has no generation prompt.
    private func cutPromptEnd(in query: String, prompt: String) -> String.Index? {
        let ends = generationPromptEnds(in: query)
        return ends.first { prompt.hasSuffix(query[..<$0]) } ?? ends.last
    }

    /// The positions just after each assistant generation prompt of the chat template in `text`.
    private func generationPromptEnds(in text: String) -> [String.Index] {
        guard let marker = generationPrompt() else { return [] }
        var ends: [String.Index] = []
        var from = text.startIndex
        while let range = text.range(of: marker, range: from..<text.endIndex) {
            ends.append(range.upperBound)
            from = range.upperBound
        }
        return ends
    }

    /// The text the chat template adds for the assistant's turn (rendering with the generation prompt
    /// minus rendering without), nil without a template.
    private func generationPrompt() -> String? {
        guard let template = try? encoder.chatTemplate() else { return nil }
        let turns = [ChatMessage(role: "user", content: "x")]
        let with = template.render(turns, addGenerationPrompt: true), without = template.render(turns, addGenerationPrompt: false)
        guard with.hasPrefix(without), with.count > without.count else { return nil }
        return String(with.dropFirst(without.count))
    }
}
