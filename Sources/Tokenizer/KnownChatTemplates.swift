import Foundation

/// The Jinja chat templates this project renders natively, and how a model's template is matched
/// against them. Matching ignores what cannot change the output: whitespace inside `{{ }}` and
/// `{% %}` tags outside string literals, the quote style and escapes of string literals, and the one
/// trailing newline Jinja drops. Everything else must be identical; a ChatML template may differ in its
/// default system prompt only.
package enum KnownChatTemplates {
    /// Stands for the default system prompt inside `chatMLWithSystemPrompt`.
    private static let systemPromptHole = "\u{1}SYSTEM\u{1}"

    /// SmolLM2 and Qwen2 (each with its own default system prompt).
    package static let chatMLWithSystemPrompt = """
        {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n\(systemPromptHole)<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    /// ChatML without a default system prompt (transformers' default ChatML, many fine-tunes).
    package static let chatML = """
        {% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    /// Meta-Llama-3-*-Instruct.
    package static let llama3 = """
        {% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}
        """

    package static func recognize(_ jinja: String) -> ChatTemplate.Format? {
        guard let template = JinjaShape(jinja) else { return nil }
        if template == JinjaShape(chatML)! { return .chatML(defaultSystemPrompt: nil) }
        if template == JinjaShape(llama3)! { return .llama3 }
        let withHole = JinjaShape(chatMLWithSystemPrompt)!
        guard let prompt = template.literalFilling(hole: systemPromptHole, in: withHole) else { return nil }
        return .chatML(defaultSystemPrompt: prompt)
    }
}

/// A Jinja template reduced to what decides its output: literal text outside tags as written, tags
/// with whitespace outside string literals removed, string literals decoded. Two templates with equal
/// shapes render the same.
package struct JinjaShape: Equatable {
    package enum Part: Equatable {
        case text(String)
        /// Code of a `{{ }}` or `{% %}` tag, delimiters included: whitespace gone, literals decoded.
        case tag([TagToken])
    }

    package enum TagToken: Equatable {
        case code(String)
        case literal(String)
    }

    package let parts: [Part]

    /// Nil when the template cannot be read (an unterminated tag or string).
    package init?(_ jinja: String) {
        // Jinja reads every line break as "\n" and drops one trailing newline.
        var normalized = jinja.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if normalized.unicodeScalars.last == "\n" { normalized.unicodeScalars.removeLast() }
        var source = Substring(normalized)
        var parts: [Part] = []
        while let start = Self.firstTagStart(source) {
            if start > source.startIndex { parts.append(.text(String(source[..<start]))) }
            guard let tag = Self.readTag(&source, from: start) else { return nil }
            parts.append(.tag(tag))
        }
        if !source.isEmpty { parts.append(.text(String(source))) }
        self.parts = parts
    }

    private static func firstTagStart(_ source: Substring) -> Substring.Index? {
        var index = source.startIndex
        while index < source.endIndex {
            let next = source.index(after: index)
            if source[index] == "{", next < source.endIndex, source[next] == "{" || source[next] == "%" || source[next] == "#" {
                return index
            }
            index = next
        }
        return nil
    }

    /// Reads the tag starting at `start` and advances `source` past it.
    private static func readTag(_ source: inout Substring, from start: Substring.Index) -> [TagToken]? {
        let kind = source[source.index(after: start)]
        let end: Character = kind == "{" ? "}" : kind == "%" ? "%" : "#"
        var tokens: [TagToken] = [.code("{" + String(kind))]
        var code = ""
        var index = source.index(start, offsetBy: 2)
        while index < source.endIndex {
            let character = source[index]
            let next = source.index(after: index)
            if character == end, next < source.endIndex, source[next] == "}" {
                tokens.append(.code(code + String(end) + "}"))
                source = source[source.index(after: next)...]
                return tokens
            }
            if character == "'" || character == "\"", kind != "#" {
                if !code.isEmpty { tokens.append(.code(code)); code = "" }
                guard let (literal, after) = readLiteral(source, from: index) else { return nil }
                tokens.append(.literal(literal))
                index = after
                continue
            }
            if !character.isWhitespace { code.append(character) }
            index = next
        }
        return nil
    }

    /// A Python-style string literal starting at the quote at `start`: its value and the index after it.
    private static func readLiteral(_ source: Substring, from start: Substring.Index) -> (String, Substring.Index)? {
        let quote = source[start]
        var value = ""
        var index = source.index(after: start)
        while index < source.endIndex {
            let character = source[index]
            index = source.index(after: index)
            if character == quote { return (value, index) }
            guard character == "\\" else { value.append(character); continue }
            guard index < source.endIndex else { return nil }
            let escaped = source[index]
            index = source.index(after: index)
            switch escaped {
            case "n": value.append("\n")
            case "t": value.append("\t")
            case "r": value.append("\r")
            case "\\", "'", "\"": value.append(escaped)
            default: value.append("\\"); value.append(escaped)
            }
        }
        return nil
    }

    /// When `self` equals `pattern` except inside the one literal of `pattern` that contains `hole`,
    /// the text standing where `hole` stands.
    package func literalFilling(hole: String, in pattern: JinjaShape) -> String? {
        guard parts.count == pattern.parts.count else { return nil }
        var filling: String?
        for (part, patternPart) in zip(parts, pattern.parts) {
            guard case let .tag(tokens) = part, case let .tag(patternTokens) = patternPart,
                  tokens.count == patternTokens.count else {
                if part != patternPart { return nil }
                continue
            }
            for (token, patternToken) in zip(tokens, patternTokens) {
                guard case let .literal(value) = token, case let .literal(patternValue) = patternToken,
                      let holeRange = patternValue.range(of: hole) else {
                    if token != patternToken { return nil }
                    continue
                }
                let prefix = patternValue[..<holeRange.lowerBound], suffix = patternValue[holeRange.upperBound...]
                guard value.hasPrefix(prefix), value.hasSuffix(suffix), value.count >= prefix.count + suffix.count else { return nil }
                filling = String(value.dropFirst(prefix.count).dropLast(suffix.count))
            }
        }
        return filling
    }
}
