import Foundation

/// One IFEval input row, in the format of Google's `input_data.jsonl`. Extra fields (such as a
/// `response`) are ignored by this type.
public struct IFEvalRow: Codable, Equatable, Sendable {
    public var key: Int?
    public var prompt: String
    public var instructionIDs: [String]
    public var kwargs: [[String: JSONValue]]

    public init(key: Int?, prompt: String, instructionIDs: [String], kwargs: [[String: JSONValue]]) {
        self.key = key
        self.prompt = prompt
        self.instructionIDs = instructionIDs
        self.kwargs = kwargs
    }

    enum CodingKeys: String, CodingKey {
        case key, prompt, kwargs
        case instructionIDs = "instruction_id_list"
    }
}

/// The verdicts for one response: strict and loose, per instruction in row order.
public struct IFEvalVerdict: Codable, Equatable, Sendable {
    public var instructionIDs: [String]
    public var strict: [Bool]
    public var loose: [Bool]

    public var followsAllStrict: Bool { strict.allSatisfy { $0 } }
    public var followsAllLoose: Bool { loose.allSatisfy { $0 } }

    enum CodingKeys: String, CodingKey {
        case instructionIDs = "instruction_id_list", strict, loose
    }
}

/// Scores responses to IFEval rows exactly as IFEval's `evaluation_lib` does:
/// - strict: the response as given; an empty (whitespace-only) response follows nothing.
/// - loose: an instruction counts as followed when any of eight variants follows it: the
///   response, with its first line removed, its last line removed, both removed, and each of
///   those four with every "*" deleted.
///
/// Rows naming an instruction this module does not support are not scored (`score` returns nil);
/// the caller counts them, so a file such as IFEval's own still runs end to end.
public struct IFEvalScorer: Sendable {
    public let sentenceSplitter: SentenceSplitter

    public init(sentenceSplitter: SentenceSplitter = SentenceSplitter()) {
        self.sentenceSplitter = sentenceSplitter
    }

    /// The ids in `row` that this module cannot check.
    public func unsupportedIDs(in row: IFEvalRow) -> [String] {
        row.instructionIDs.filter { !InstructionRegistry.isSupported($0) }
    }

    /// The row's instructions with their arguments bound; nil when one is unsupported.
    public func instructions(for row: IFEvalRow) throws -> [Instruction]? {
        guard row.instructionIDs.count == row.kwargs.count else {
            throw InstructionError.argumentCountMismatch(instructions: row.instructionIDs.count, kwargs: row.kwargs.count)
        }
        let context = InstructionContext(prompt: row.prompt, sentenceSplitter: sentenceSplitter)
        var result: [Instruction] = []
        for (id, arguments) in zip(row.instructionIDs, row.kwargs) {
            guard let instruction = try InstructionRegistry.make(id: id, arguments: arguments, context: context) else { return nil }
            result.append(instruction)
        }
        return result
    }

    /// Strict and loose verdicts for `response`, or nil when the row has an unsupported instruction.
    public func score(_ row: IFEvalRow, response: String) throws -> IFEvalVerdict? {
        guard let instructions = try instructions(for: row) else { return nil }
        let variants = Self.looseVariants(of: response).filter { !PythonText.strip($0).isEmpty }
        let strictOK = !PythonText.strip(response).isEmpty
        return IFEvalVerdict(
            instructionIDs: row.instructionIDs,
            strict: instructions.map { strictOK && $0.isFollowed(by: response) },
            loose: instructions.map { instruction in variants.contains { instruction.isFollowed(by: $0) } })
    }

    /// The eight responses IFEval's loose accuracy tries, in its order.
    public static func looseVariants(of response: String) -> [String] {
        let lines = PythonText.split(response, separator: "\n")
        let withoutFirst = PythonText.strip(lines.dropFirst().joined(separator: "\n"))
        let withoutLast = PythonText.strip(lines.dropLast().joined(separator: "\n"))
        let withoutBoth = PythonText.strip(lines.dropFirst().dropLast().joined(separator: "\n"))
        let noStars = { (text: String) in text.replacingOccurrences(of: "*", with: "") }
        return [response, noStars(response), withoutFirst, withoutLast, withoutBoth,
                noStars(withoutFirst), noStars(withoutLast), noStars(withoutBoth)]
    }
}

/// Accuracy counts: how many of `total` were followed, strictly and loosely.
public struct FollowTally: Codable, Equatable, Sendable {
    public var total = 0
    public var strict = 0
    public var loose = 0

    public init() {}

    public var strictAccuracy: Double { total == 0 ? 0 : Double(strict) / Double(total) }
    public var looseAccuracy: Double { total == 0 ? 0 : Double(loose) / Double(total) }

    mutating func add(strict followedStrict: Bool, loose followedLoose: Bool) {
        total += 1
        if followedStrict { strict += 1 }
        if followedLoose { loose += 1 }
    }

    enum CodingKeys: String, CodingKey {
        case total, strict, loose, strictAccuracy = "strict_accuracy", looseAccuracy = "loose_accuracy"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        total = try container.decode(Int.self, forKey: .total)
        strict = try container.decode(Int.self, forKey: .strict)
        loose = try container.decode(Int.self, forKey: .loose)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(total, forKey: .total)
        try container.encode(strict, forKey: .strict)
        try container.encode(loose, forKey: .loose)
        try container.encode(strictAccuracy, forKey: .strictAccuracy)
        try container.encode(looseAccuracy, forKey: .looseAccuracy)
    }
}

/// IFEval's report for one set: prompt-level (all instructions of a prompt followed) and
/// instruction-level accuracy, strict and loose, with breakdowns by instruction id and by its
/// category (the part before ":").
public struct IFEvalSummary: Codable, Equatable, Sendable {
    public var promptLevel = FollowTally()
    public var instructionLevel = FollowTally()
    public var byInstruction: [String: FollowTally] = [:]
    public var byCategory: [String: FollowTally] = [:]
    /// Prompts not scored because they use an unsupported instruction, and those instructions.
    public var skippedPrompts = 0
    public var skippedInstructions: [String: Int] = [:]

    public init() {}

    public mutating func add(_ verdict: IFEvalVerdict) {
        promptLevel.add(strict: verdict.followsAllStrict, loose: verdict.followsAllLoose)
        for (index, id) in verdict.instructionIDs.enumerated() {
            let strict = verdict.strict[index], loose = verdict.loose[index]
            instructionLevel.add(strict: strict, loose: loose)
            byInstruction[id, default: FollowTally()].add(strict: strict, loose: loose)
            let category = String(id.split(separator: ":", maxSplits: 1).first ?? Substring(id))
            byCategory[category, default: FollowTally()].add(strict: strict, loose: loose)
        }
    }

    public mutating func addSkipped(unsupported ids: [String]) {
        skippedPrompts += 1
        for id in ids { skippedInstructions[id, default: 0] += 1 }
    }

    enum CodingKeys: String, CodingKey {
        case promptLevel = "prompt_level", instructionLevel = "instruction_level"
        case byInstruction = "by_instruction", byCategory = "by_category"
        case skippedPrompts = "skipped_prompts", skippedInstructions = "skipped_instructions"
    }
}
