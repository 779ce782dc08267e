/// One verifiable instruction with its arguments bound: `isFollowed(by:)` is IFEval's
/// `check_following`.
public struct Instruction: Sendable {
    public let id: String
    private let check: @Sendable (String) -> Bool

    init(id: String, check: @escaping @Sendable (String) -> Bool) {
        self.id = id
        self.check = check
    }

    public func isFollowed(by response: String) -> Bool { check(response) }
}

/// What a checker may need besides its arguments.
public struct InstructionContext: Sendable {
    public var prompt: String
    public var sentenceSplitter: SentenceSplitter

    public init(prompt: String = "", sentenceSplitter: SentenceSplitter = SentenceSplitter()) {
        self.prompt = prompt
        self.sentenceSplitter = sentenceSplitter
    }
}

/// Builds a checker from an instruction's arguments; throws when an argument is missing or invalid.
typealias InstructionBuilder = @Sendable (InstructionArguments, InstructionContext) throws -> @Sendable (String) -> Bool

/// The IFEval instruction ids this module can check, with the same ids and argument names as
/// Google's IFEval. `language:response_language` needs a statistical language identifier and is
/// not supported: rows using it are skipped and counted (see `IFEvalScorer`).
public enum InstructionRegistry {
    static let builders: [String: InstructionBuilder] = caseBuilders
        .merging(lengthBuilders) { first, _ in first }
        .merging(keywordBuilders) { first, _ in first }
        .merging(formatBuilders) { first, _ in first }
        .merging(contentBuilders) { first, _ in first }

    public static var supportedIDs: [String] { builders.keys.sorted() }

    public static func isSupported(_ id: String) -> Bool { builders[id] != nil }

    /// The instruction for `id` with `arguments`, or nil when `id` is not supported.
    public static func make(id: String, arguments: [String: JSONValue], context: InstructionContext = .init()) throws -> Instruction? {
        guard let builder = builders[id] else { return nil }
        let check = try builder(InstructionArguments(instructionID: id, values: arguments), context)
        return Instruction(id: id, check: check)
    }
}
