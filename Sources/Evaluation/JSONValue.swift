import Foundation

/// A JSON value as it appears in IFEval `kwargs`: strings, integers, lists of strings, or null.
/// Kept general (any JSON) so that an unexpected value is reported by name rather than failing
/// the whole row's decoding.
public enum JSONValue: Codable, Equatable, Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Integral values are written without a fraction ("3", not "3.0"), as Python's json does.
            if value.rounded() == value, abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    public static func int(_ value: Int) -> JSONValue { .number(Double(value)) }
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
}

/// The keyword arguments of one instruction, with typed accessors that name the problem on error.
/// A `null` value counts as absent, as in the Hugging Face copy of IFEval where every row lists
/// every argument name and most are null.
public struct InstructionArguments: Sendable {
    public let instructionID: String
    public let values: [String: JSONValue]

    public init(instructionID: String, values: [String: JSONValue]) {
        self.instructionID = instructionID
        self.values = values.filter { $0.value != .null }
    }

    private func missing(_ name: String) -> InstructionError {
        .invalidArgument(instructionID: instructionID, name: name, problem: "missing")
    }

    private func invalid(_ name: String, _ problem: String) -> InstructionError {
        .invalidArgument(instructionID: instructionID, name: name, problem: problem)
    }

    public func string(_ name: String) throws -> String {
        guard let value = values[name] else { throw missing(name) }
        guard case .string(let text) = value else { throw invalid(name, "expected a string") }
        return text
    }

    public func integer(_ name: String) throws -> Int {
        guard let value = values[name] else { throw missing(name) }
        guard case .number(let number) = value, number.rounded() == number, abs(number) < 1e12 else {
            throw invalid(name, "expected an integer")
        }
        return Int(number)
    }

    public func strings(_ name: String) throws -> [String] {
        guard let value = values[name] else { throw missing(name) }
        guard case .array(let items) = value else { throw invalid(name, "expected a list of strings") }
        return try items.map { item in
            guard case .string(let text) = item else { throw invalid(name, "expected a list of strings") }
            return text
        }
    }

    /// `relation` arguments: IFEval accepts exactly "less than" and "at least".
    public func relation(_ name: String) throws -> Relation {
        let text = try string(name)
        guard let relation = Relation(rawValue: text) else {
            throw invalid(name, "\"\(text)\" is not \"less than\" or \"at least\"")
        }
        return relation
    }
}

/// IFEval's two comparisons for counted quantities.
public enum Relation: String, Codable, Sendable, CaseIterable {
    case lessThan = "less than"
    case atLeast = "at least"

    public func holds(_ actual: Int, _ threshold: Int) -> Bool {
        switch self {
        case .lessThan: return actual < threshold
        case .atLeast: return actual >= threshold
        }
    }
}

/// Problems with an instruction in an input row.
public enum InstructionError: Error, CustomStringConvertible, Equatable {
    case invalidArgument(instructionID: String, name: String, problem: String)
    case argumentCountMismatch(instructions: Int, kwargs: Int)

    public var description: String {
        switch self {
        case .invalidArgument(let id, let name, let problem):
            return "instruction \(id): argument \"\(name)\": \(problem)"
        case .argumentCountMismatch(let instructions, let kwargs):
            return "\"instruction_id_list\" has \(instructions) entries but \"kwargs\" has \(kwargs)"
        }
    }
}
