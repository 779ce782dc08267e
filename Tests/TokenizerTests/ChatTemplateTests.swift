import Tokenizer
import XCTest

/// Recognizing chat templates and rendering them. Renderings here are checked by hand against the
/// Jinja source; Tests/python/test_tokenizer_parity.py checks them against jinja2 itself.
final class ChatTemplateTests: XCTestCase {
    /// SmolLM2-135M-Instruct's template as its GGUF stores it (newlines inside the string literals).
    static let smolLM2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

    let conversation = [ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello!"),
                        ChatMessage(role: "user", content: " How are you? ")]

    func testSmolLM2TemplateIsChatMLWithItsSystemPrompt() throws {
        let template = try ChatTemplate(jinja: Self.smolLM2, origin: "test")
        XCTAssertEqual(template.format, .chatML(defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
        XCTAssertEqual(template.render(conversation, addGenerationPrompt: true), """
            <|im_start|>system
            You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
            <|im_start|>user
            Hi<|im_end|>
            <|im_start|>assistant
            Hello!<|im_end|>
            <|im_start|>user
             How are you? <|im_end|>
            <|im_start|>assistant

            """)
        let withSystem = [ChatMessage(role: "system", content: "Be brief.")] + conversation.prefix(1)
        XCTAssertEqual(template.render(withSystem, addGenerationPrompt: false),
                       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        XCTAssertEqual(template.render([], addGenerationPrompt: true), "<|im_start|>assistant\n")
        XCTAssertEqual(template.endOfTurn, "<|im_end|>")
    }

    func testSpacingQuotesAndEscapesDoNotMatter() throws {
        let respaced = Self.smolLM2
            .replacingOccurrences(of: "{{'<|im_start|>' + message['role']", with: "{{ \"<|im_start|>\"+message[\"role\"]")
            .replacingOccurrences(of: "'<|im_end|>' + '\n'}}", with: "'<|im_end|>' + '\\n' }}")
            .replacingOccurrences(of: "{% endfor %}", with: "{%  endfor  %}") + "\n"
        XCTAssertEqual(try ChatTemplate(jinja: respaced, origin: "test").format,
                       .chatML(defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
        let qwen2 = Self.smolLM2.replacingOccurrences(of: "You are a helpful AI assistant named SmolLM, trained by Hugging Face", with: "You are a helpful assistant.")
        XCTAssertEqual(try ChatTemplate(jinja: qwen2, origin: "test").format, .chatML(defaultSystemPrompt: "You are a helpful assistant."))
    }

    func testLlama3TemplateTrimsContentAndStartsWithBOS() throws {
        let template = try ChatTemplate(jinja: KnownChatTemplates.llama3, bosToken: "<|begin_of_text|>", origin: "test")
        XCTAssertEqual(template.format, .llama3)
        XCTAssertEqual(template.render(conversation, addGenerationPrompt: true),
                       "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                       + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                       + "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
                       + "<|start_header_id|>assistant<|end_header_id|>\n\n")
        XCTAssertEqual(template.render([], addGenerationPrompt: false), "")
        XCTAssertEqual(template.endOfTurn, "<|eot_id|>")
    }

    func testUnknownTemplateIsAnErrorNamingTheModel() {
        let mistral = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
        guard case let .unknownChatTemplate(model, _)? = tokenizerError({ _ = try ChatTemplate(jinja: mistral, origin: "models/mistral.gguf") }) else {
            return XCTFail("expected unknownChatTemplate")
        }
        XCTAssertEqual(model, "models/mistral.gguf")
        // A ChatML template that also emits EOS when no generation prompt is asked for renders
        // differently, so it is not taken for ChatML.
        let withElse = KnownChatTemplates.chatML.replacingOccurrences(of: "{% endif %}", with: "{% else %}{{ eos_token }}{% endif %}")
        XCTAssertNotNil(tokenizerError { _ = try ChatTemplate(jinja: withElse, origin: "x") })
        XCTAssertNotNil(tokenizerError { _ = try ChatTemplate(jinja: "{{ '<|im_start|>", origin: "x") })
    }

    func testJinjaTrimRemovesWhatPythonStripRemoves() {
        XCTAssertEqual(JinjaText.trim(" \t\n\u{0B}\u{0C}\r\u{1C}\u{1D}\u{1E}\u{1F}\u{85}\u{A0}\u{1680}\u{2000}\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}x y\u{3000} "), "x y")
        // Not whitespace to Python: zero-width space, BOM, U+180E.
        XCTAssertEqual(JinjaText.trim("\u{200B}x\u{FEFF}\u{180E}"), "\u{200B}x\u{FEFF}\u{180E}")
        XCTAssertEqual(JinjaText.trim("   "), "")
    }

    func testEndOfTurnIdComesFromTheTemplate() throws {
        var definition = tinyDefinition()
        definition.tokens.append("<|im_end|>")
        definition.addedTokens.append(.init(id: definition.tokens.count - 1, content: "<|im_end|>", special: true))
        definition.chatTemplate = KnownChatTemplates.chatML
        definition.deriveEndOfTurnFromChatTemplate()
        XCTAssertEqual(definition.endOfTurnTokenId, definition.tokens.count - 1)
    }
}
