import Foundation

/// One message of a conversation.
public struct ChatMessage: Codable, Equatable, Sendable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's chat template. Models ship theirs as a Jinja program (GGUF `tokenizer.chat_template`,
/// tokenizer_config.json `chat_template`); rather than run Jinja, the known templates are recognized
/// and rendered natively, producing exactly what transformers' `apply_chat_template` renders. An
/// unrecognized template is an error, never a guess.
public struct ChatTemplate: Sendable, Equatable {
    public enum Format: Sendable, Equatable {
        /// `<|im_start|>role\ncontent<|im_end|>\n` per message. With a default system prompt, a
        /// conversation that does not start with a system message gets one first (SmolLM2, Qwen2).
        case chatML(defaultSystemPrompt: String?)
        /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`, content trimmed, BOS first.
        case llama3
    }

    public let format: Format
    /// The Jinja source the format was recognized from.
    public let source: String
    /// Text of the BOS token, which LLaMA-3's template writes before the first message.
    public let bosToken: String

    /// Recognizes a Jinja chat template; `origin` (model or file path) names it in errors.
    public init(jinja: String, bosToken: String = "", origin: String) throws {
        guard let format = KnownChatTemplates.recognize(jinja) else {
            throw TokenizerError.unknownChatTemplate(model: origin, template: jinja)
        }
        self.format = format
        self.source = jinja
        self.bosToken = bosToken
    }

    /// The template shipped with the tokenizer's model.
    public init(tokenizer: BPETokenizer) throws {
        guard let jinja = tokenizer.chatTemplateSource else { throw TokenizerError.noChatTemplate(model: tokenizer.source) }
        try self.init(jinja: jinja, bosToken: tokenizer.bosTokenText ?? "", origin: tokenizer.source)
    }

    /// A Jinja template file (e.g. a chat_template.jinja), for a model that ships none or a different one.
    public init(contentsOfFile path: String, tokenizer: BPETokenizer) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.cannotRead(path: path, reason: "no such file or not readable")
        }
        try self.init(jinja: String(decoding: data, as: UTF8.self), bosToken: tokenizer.bosTokenText ?? "", origin: path)
    }

    /// The text that closes every turn, so also the end of an assistant response.
    public var endOfTurn: String {
        switch format {
        case .chatML: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        }
    }

    /// The conversation as the model reads it; with `addGenerationPrompt`, followed by the header of
    /// the assistant turn the model is to write.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var text = ""
        switch format {
        case let .chatML(defaultSystemPrompt):
            if let defaultSystemPrompt, let first = messages.first, first.role != "system" {
                text += "<|im_start|>system\n\(defaultSystemPrompt)<|im_end|>\n"
            }
            for message in messages {
                text += "<|im_start|>\(message.role)\n\(message.content)<|im_end|>\n"
            }
            if addGenerationPrompt { text += "<|im_start|>assistant\n" }
        case .llama3:
            if !messages.isEmpty { text += bosToken }
            for message in messages {
                text += "<|start_header_id|>\(message.role)<|end_header_id|>\n\n\(JinjaText.trim(message.content))<|eot_id|>"
            }
            if addGenerationPrompt { text += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return text
    }
}

extension BPETokenizer {
    var bosTokenText: String? { definition.text(of: bosTokenId) }
}

/// What Jinja's filters do to text, where the templates use them.
package enum JinjaText {
    /// Jinja's `trim`: Python's str.strip(), which removes the characters str.isspace() accepts.
    package static func trim(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isPythonSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isPythonSpace($0) })!
        return String(scalars[first...last])
    }

    /// Python's str.isspace(): bidirectional class WS, B or S, or general category Zs.
    package static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
}
