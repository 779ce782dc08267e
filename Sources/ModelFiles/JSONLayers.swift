import Foundation

/// Settings given as layers of JSON objects, each later layer replacing what the earlier ones set:
/// objects are merged key by key at every depth (a layer may change one field of a nested group),
/// other values are replaced whole. With a settings type's defaults as the first layer, a file
/// needs only the keys it changes. Pipeline settings and `srppo sft`/`ppo --config` files read so.
public enum JSONLayers {
    public static func merged(_ layers: [[String: Any]]) -> [String: Any] {
        layers.reduce(into: [:]) { merge($1, into: &$0) }
    }

    private static func merge(_ layer: [String: Any], into base: inout [String: Any]) {
        for (key, value) in layer {
            if let object = value as? [String: Any], var nested = base[key] as? [String: Any] {
                merge(object, into: &nested)
                base[key] = nested
            } else {
                base[key] = value
            }
        }
    }

    /// "unknown setting \"x\" (known: …)" for the first key of `layer` not in `known`, else nil: a
    /// misspelt setting would otherwise be ignored.
    public static func unknownKey(in layer: [String: Any], known: Set<String>, noun: String = "setting") -> String? {
        layer.keys.sorted().first { !known.contains($0) }.map {
            "unknown \(noun) \"\($0)\" (known: \(known.sorted().joined(separator: ", ")))"
        }
    }

    /// `defaults` with `layers` over it. Throws the decoder's error (`DecodingProblem` words it).
    public static func decode<T: Codable>(_ type: T.Type, over defaults: T, layers: [[String: Any]]) throws -> T {
        let base = try JSONSerialization.jsonObject(with: JSONEncoder().encode(defaults)) as? [String: Any] ?? [:]
        return try JSONDecoder().decode(type, from: JSONSerialization.data(withJSONObject: merged([base] + layers)))
    }
}
