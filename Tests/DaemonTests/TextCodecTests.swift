import Daemon
import Foundation
import Tokenizer
import WireProtocol
import TestSupport
import XCTest

/// Text requests with SmolLM2's tokenizer: score items follow `PromptResponseEncoder.encodePair` (the
/// rule of `srppo score`), and OpenRLHF queries are split into the same prompt and response ids.
final class TextCodecTests: XCTestCase {
    private func codec() throws -> TextCodec {
        guard let path = smolLM2Path() else { throw XCTSkip("SmolLM2 not downloaded (scripts/setup.sh)") }
        let encoder = try PromptResponseEncoder(tokenizer: try BPETokenizer(modelPath: path))
        return TextCodec(encoder: encoder, source: path, modelEOS: [2])
    }

    func testScoreItemsFollowTheSharedRecordRule() throws {
        let codec = try codec()
        let chat = [ChatMessage(role: "user", content: "Say hi")]
        let plain = try codec.encode(ScoreItem(prompt: "What is 2+2?", response: "4"), at: "items.0")
        XCTAssertTrue(plain == (try codec.encoder.encodePair(prompt: "What is 2+2?", messages: nil, response: "4")))
        XCTAssertEqual(plain.response.last, 2)
        let withResponse = try codec.encode(ScoreItem(messages: chat, response: "Hi!"), at: "items.1")
        XCTAssertTrue(withResponse == (try codec.encoder.encodePair(prompt: nil, messages: chat, response: "Hi!")))
        // A final assistant message is the response.
        let final = try codec.encode(ScoreItem(messages: chat + [.init(role: "assistant", content: "Hi!")]), at: "items.2")
        XCTAssertTrue(final == withResponse)

        var mixed = ScoreItem(promptIDs: [1], responseIDs: [2])
        mixed.response = "x"
        XCTAssertEqual(code { try codec.encode(mixed, at: "items.3") }, .badRequest)
        XCTAssertEqual(code { try codec.encode(ScoreItem(messages: chat), at: "items.4") }, .badRequest)
        var both = ScoreItem(prompt: "a", response: "b")
        both.messages = chat
        XCTAssertEqual(code { try codec.encode(both, at: "items.5") }, .badRequest)
    }

    func testOpenRLHFQueriesSplitIntoPromptAndResponse() throws {
        let codec = try codec()
        let prompt = try codec.encoder.chatTemplate().render([Tokenizer.ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        let expectedPrompt = codec.tokenizer.encode(prompt)
        let expectedResponse = codec.tokenizer.encode("Hello!<|im_end|>")
        // Left padding and EOS padding after the response are dropped.
        let padded = "<|im_end|><|im_end|>" + prompt + "Hello!<|im_end|><|im_end|><|im_end|>"
        let split = try codec.splitQuery(padded, prompt: prompt, at: "query.0")
        XCTAssertEqual(split.prompt, expectedPrompt)
        XCTAssertEqual(split.response, expectedResponse)
        // Without the prompt: split after the template's assistant generation prompt.
        let unprompted = try codec.splitQuery(prompt + "Hello!<|im_end|>", prompt: nil, at: "query.0")
        XCTAssertEqual(unprompted.prompt, expectedPrompt)
        XCTAssertEqual(unprompted.response, expectedResponse)
        // Cut off: no EOS at the end.
        XCTAssertNotEqual(try codec.splitQuery(prompt + "Hello", prompt: prompt, at: "query.0").response.last, 2)
        XCTAssertEqual(code { try codec.splitQuery("something else", prompt: prompt, at: "query.1") }, .badRequest)
        XCTAssertFalse(split.promptCut)
    }

    /// OpenRLHF v0.11 cuts a long prompt from the left: the query holds the prompt's end only. It is
    /// split after the generation prompt that ends the kept part, even when the response repeats it.
    func testLeftTruncatedPromptIsSplitAtItsGenerationPrompt() throws {
        let codec = try codec()
        let template = try codec.encoder.chatTemplate()
        let prompt = template.render([Tokenizer.ChatMessage(role: "user", content: "A long question about many things")], addGenerationPrompt: true)
        let kept = String(prompt.dropFirst(20))
        let response = "Sure.<|im_end|>"
        let split = try codec.splitQuery(kept + response, prompt: prompt, at: "query.0")
        XCTAssertTrue(split.promptCut)
        XCTAssertEqual(split.prompt, codec.tokenizer.encode(kept))
        XCTAssertEqual(split.response, codec.tokenizer.encode(response))
        // A response that contains the generation prompt text: the cut prompt's end is still found.
        let echo = "<|im_start|>assistant\nSure.<|im_end|>"
        XCTAssertEqual(try codec.splitQuery(kept + echo, prompt: prompt, at: "query.0").prompt, codec.tokenizer.encode(kept))
    }

    /// OpenRLHF decodes the answer with Python's json module: whole numbers must still read as floats.
    func testRemoteRewardBodyWritesEveryNumberAsAFloat() throws {
        let body = RemoteRewardResponse(rewards: [0, -1, 0.25, 1e-7], scores: [0, 2], extraLogs: ["truncated": [0, 1], "a": []])
        XCTAssertEqual(String(decoding: try body.jsonData(), as: UTF8.self),
                       #"{"extra_logs":{"a":[],"truncated":[0.0,1.0]},"rewards":[0.0,-1.0,0.25,1e-07],"scores":[0.0,2.0]}"#)
        XCTAssertEqual(try JSONDecoder().decode(RemoteRewardResponse.self, from: try body.jsonData()), body)
        XCTAssertThrowsError(try RemoteRewardResponse(rewards: [.nan], scores: [0], extraLogs: [:]).jsonData())
    }

    private func code<T>(_ body: () throws -> T) -> ErrorCode? {
        do {
            _ = try body()
            return nil
        } catch let error as ErrorResponse {
            return error.error.code
        } catch {
            return nil
        }
    }
}
