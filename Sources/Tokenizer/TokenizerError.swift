/// Everything that can be wrong with tokenizer data or a chat template. Every case names the file
/// (or model) it came from, and the key, token or merge where there is one.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case missingField(source: String, field: String)
    case badField(source: String, field: String, problem: String)
    case badToken(source: String, id: Int, problem: String)
    case badMerge(source: String, index: Int, merge: String, problem: String)
    case unsupportedModel(source: String, model: String)
    case unknownPreTokenizer(source: String, name: String)
    case unsupported(source: String, feature: String)
    case unknownChatTemplate(model: String, template: String)
    case noChatTemplate(model: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason):
            return "\(path): cannot read tokenizer: \(reason)"
        case let .cannotWrite(path, reason):
            return "\(path): cannot write tokenizer file: \(reason)"
        case let .missingField(source, field):
            return "\(source): tokenizer field '\(field)' is missing"
        case let .badField(source, field, problem):
            return "\(source): tokenizer field '\(field)': \(problem)"
        case let .badToken(source, id, problem):
            return "\(source): token \(id): \(problem)"
        case let .badMerge(source, index, merge, problem):
            return "\(source): merge #\(index) '\(merge)': \(problem)"
        case let .unsupportedModel(source, model):
            return "\(source): tokenizer model '\(model)' is not supported (only byte-level BPE: GGUF 'gpt2', tokenizer.json 'BPE' with a ByteLevel decoder)"
        case let .unknownPreTokenizer(source, name):
            return "\(source): unknown pre-tokenizer '\(name)' (supported: \(PreTokenizerKind.supportedNames))"
        case let .unsupported(source, feature):
            return "\(source): \(feature) is not supported"
        case let .unknownChatTemplate(model, template):
            let excerpt = template.count > 60 ? String(template.prefix(60)) + "…" : template
            return "\(model): chat template not recognized (supported: ChatML as in SmolLM2/Qwen2, LLaMA-3); pass a known template file with --chat-template. Template starts: \(excerpt.debugDescription)"
        case let .noChatTemplate(model):
            return "\(model): the model has no chat template; pass one with --chat-template"
        }
    }
}
