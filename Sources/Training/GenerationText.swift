import Foundation
import Tokenizer
import Transformer

/// What generation needs from a model's tokenizer: prompt tokens from text records, and text from
/// generated tokens, streamed.
public struct GenerationText {
    public let promptResponseEncoder: PromptResponseEncoder
    public var encoder: RecordEncoder { TokenizerRecordEncoder(encoder: promptResponseEncoder) }
    public var tokenizer: BPETokenizer { promptResponseEncoder.tokenizer }

    public func decoder() -> StreamingDecoder { tokenizer.streamingDecoder() }

    /// The model's tokenizer, or nil when it has none (generation then works on token ids).
    public static func load(for loaded: LoadedModel, chatTemplateFile: String?) throws -> GenerationText? {
        try TextEncoding.promptResponseEncoder(for: loaded, chatTemplateFile: chatTemplateFile).map(GenerationText.init)
    }
}

/// One sequence's text as its tokens arrive: cut before the first --stop string, and streamed
/// without ever printing text that a stop string could still claim.
public struct SequenceText {
    private var decoder: StreamingDecoder
    private let stops: [String]
    private var text = ""
    private var flushed = false
    /// Where the first stop string starts, once one has appeared.
    private var cut: String.Index?
    /// UTF-8 bytes of `text` already handed out by `unprinted`.
    private var printed = 0

    public init(decoder: StreamingDecoder, stops: [String]) {
        self.decoder = decoder
        self.stops = stops
    }

    /// Adds a token's text; returns true when a stop string has appeared.
    public mutating func append(_ token: Int32) -> Bool {
        text += decoder.append(token)
        cut = stops.compactMap { text.range(of: $0)?.lowerBound }.min()
        return cut != nil
    }

    /// The text not yet handed out that is safe to show: when the sequence is over, all of it up
    /// to the cut; before, all but the last characters that a stop string could still begin with.
    public mutating func unprinted(final: Bool) -> String {
        if final { flush() }
        var end = cut ?? text.endIndex
        if !final, cut == nil, let longest = stops.map(\.count).max() {
            end = text.index(text.endIndex, offsetBy: -(longest - 1), limitedBy: text.startIndex) ?? text.startIndex
        }
        let start = text.utf8.index(text.startIndex, offsetBy: printed)
        guard start < end else { return "" }
        printed = text.utf8.distance(from: text.startIndex, to: end)
        return String(text[start..<end])
    }

    /// The whole text, cut before the stop string if one appeared.
    public mutating func final() -> String {
        flush()
        return cut.map { String(text[..<$0]) } ?? text
    }

    private mutating func flush() {
        if flushed || cut != nil { return }
        flushed = true
        text += decoder.finish()
    }
}
