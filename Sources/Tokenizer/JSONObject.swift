import Foundation

/// A JSON object read from a tokenizer file, with typed accessors whose errors name the file and the
/// field's path (`model.vocab`, `added_tokens[3].content`).
struct JSONObject {
    let dictionary: [String: Any]
    let source: String
    /// Where this object sits in its file ("" for the top level).
    let path: String

    init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenizerError.cannotRead(path: file, reason: "no such file or not readable")
        }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.cannotRead(path: file, reason: "not valid JSON")
        }
        try self.init(value, source: file, path: "")
    }

    init(_ value: Any, source: String, path: String) throws {
        guard let dictionary = value as? [String: Any] else {
            throw TokenizerError.badField(source: source, field: path.isEmpty ? "(top level)" : path, problem: "expected an object")
        }
        self.dictionary = dictionary
        self.source = source
        self.path = path
    }

    func bad(_ key: String, _ problem: String) -> TokenizerError {
        .badField(source: source, field: fieldPath(key), problem: problem)
    }

    private func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Present and not null.
    func has(_ key: String) -> Bool {
        guard let value = dictionary[key] else { return false }
        return !(value is NSNull)
    }

    private func required<T>(_ key: String, _ read: (String) throws -> T?) throws -> T {
        guard let value = try read(key) else { throw TokenizerError.missingField(source: source, field: fieldPath(key)) }
        return value
    }

    private func optional<T>(_ key: String, _ kind: String) throws -> T? {
        guard has(key) else { return nil }
        guard let value = dictionary[key] as? T else { throw bad(key, "expected \(kind)") }
        return value
    }

    func optionalObject(_ key: String) throws -> JSONObject? {
        guard has(key) else { return nil }
        return try JSONObject(dictionary[key]!, source: source, path: fieldPath(key))
    }

    func object(_ key: String) throws -> JSONObject { try required(key, optionalObject) }
    func optionalString(_ key: String) throws -> String? { try optional(key, "a string") }
    func string(_ key: String) throws -> String { try required(key, optionalString) }
    func optionalBool(_ key: String) throws -> Bool? { try optional(key, "true or false") }
    func optionalInteger(_ key: String) throws -> Int? { try optional(key, "an integer") }
    func integer(_ key: String) throws -> Int { try required(key, optionalInteger) }
    func array(_ key: String) throws -> [Any] { try required(key) { try optional($0, "an array") } }

    /// A special token given as its text or as an AddedToken object (`{"content": …}`).
    func optionalTokenContent(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        if let text = dictionary[key] as? String { return text }
        return try object(key).string("content")
    }

    /// `chat_template` as one string, or the "default" entry of a list of named templates.
    func optionalChatTemplate() throws -> String? {
        guard has("chat_template") else { return nil }
        if let text = dictionary["chat_template"] as? String { return text }
        let named = try array("chat_template").enumerated().map { try JSONObject($1, source: source, path: "chat_template[\($0)]") }
        guard let entry = try named.first(where: { try $0.optionalString("name") == "default" }) else {
            throw bad("chat_template", "a list of templates without one named \"default\"")
        }
        return try entry.string("template")
    }
}
