import Foundation

/// What a JSON decoder found wrong, as the field it concerns and one line of text: the one wording of
/// decoding errors for data files, pipeline settings, weight-image manifests and daemon requests.
public struct DecodingProblem: CustomStringConvertible, Equatable {
    /// The field's path, keys and array indices joined by dots ("items.0.prompt_ids"); nil for the
    /// document as a whole.
    public let field: String?
    /// Whether the text is not JSON at all (rather than JSON of the wrong shape).
    public let isSyntaxError: Bool
    public let description: String

    public init(_ error: Error) {
        func path(_ keys: [CodingKey]) -> String? {
            keys.isEmpty ? nil : keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        func named(_ field: String?, _ problem: String) -> String { field.map { "field \"\($0)\": \(problem)" } ?? problem }
        switch error {
        case let DecodingError.keyNotFound(key, context):
            field = path(context.codingPath + [key])
            isSyntaxError = false
            description = "missing field \"\(field!)\""
        case let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty:
            (field, isSyntaxError, description) = (nil, false, "expected a JSON object")
        case let DecodingError.typeMismatch(type, context):
            field = path(context.codingPath)
            isSyntaxError = false
            description = named(field, "expected \(Self.describe(type))")
        case let DecodingError.valueNotFound(type, context):
            field = path(context.codingPath)
            isSyntaxError = false
            description = named(field, "null where \(Self.describe(type)) is expected")
        case let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty:
            field = path(context.codingPath)
            isSyntaxError = false
            description = named(field, context.debugDescription)
        case DecodingError.dataCorrupted:
            (field, isSyntaxError, description) = (nil, true, "not valid JSON")
        default:
            (field, isSyntaxError, description) = (nil, false, "\(error)")
        }
    }

    /// A JSON value of `type`, in words.
    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a \(name)"
        }
    }
}
