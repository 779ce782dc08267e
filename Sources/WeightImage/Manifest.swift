import Foundation
import ModelFiles
import Transformer

/// Element type of the weights in an image: f32 (the `LlamaLayout` parameter buffer as is; models on
/// it can score, generate and start training) or bf16 (`BF16ImageLayout`: packed bf16 matrices and
/// fp32 norms, about half the bytes; models on it score in bf16 only).
public enum WeightDType: String, Codable, Sendable, CaseIterable {
    case f32, bf16

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = WeightDType(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription:
                "unknown element type '\(text)' (known: \(Self.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = value
    }
}

/// What a weight image holds: the architecture, the element type, where each tensor sits and a hash of
/// the bytes. It travels as JSON beside the memory (see docs/weight-image-protocol.md) and is checked
/// against this engine before anything is mapped.
///
/// The data region starts at byte 0 of the memory and is `dataBytes` long: for f32, the model's flat
/// parameter buffer in `LlamaLayout` order; for bf16, `BF16ImageLayout`; alignment padding (zeros)
/// included. `sha256` is the SHA-256 of exactly those bytes, so the same checkpoint and dtype always
/// give the same hash whatever the backing or the name.
public struct WeightImageManifest: Codable, Equatable, Sendable {
    public static let formatName = "srppo-weight-image"
    public static let currentFormatVersion = 1

    public struct TensorEntry: Codable, Equatable, Sendable {
        public let name: String
        public let shape: [Int]
        /// Byte offset from the start of the image.
        public let offset: Int
        /// How the values are stored, in bf16 images only: "f32" (row-major fp32) or "bf16-panels"
        /// (`BF16Matrix`'s packed layout). Absent in f32 images: row-major fp32.
        public let encoding: String?

        public init(name: String, shape: [Int], offset: Int, encoding: String? = nil) {
            self.name = name
            self.shape = shape
            self.offset = offset
            self.encoding = encoding
        }
    }

    /// The checkpoint the image was built from (informational; not part of the hash).
    public struct Source: Codable, Equatable, Sendable {
        /// "gguf" or "huggingface".
        public let format: String
        public let path: String

        public init(format: String, path: String) {
            self.format = format
            self.path = path
        }
    }

    /// Where the tokenizer of this model is found (informational).
    public struct Tokenizer: Codable, Equatable, Sendable {
        /// "gguf-metadata" or "tokenizer.json".
        public let kind: String
        public let path: String

        public init(kind: String, path: String) {
            self.kind = kind
            self.path = path
        }
    }

    public var format: String
    public var formatVersion: Int
    public var layoutVersion: Int
    public var name: String
    public var dtype: WeightDType
    /// The engine's own encoding of `LlamaConfig` (camelCase keys).
    public var config: LlamaConfig
    public var dataBytes: Int
    public var tensors: [TensorEntry]
    /// Lowercase hex SHA-256 of the data region.
    public var sha256: String
    public var source: Source?
    public var tokenizer: Tokenizer?

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", layoutVersion = "layout_version", name, dtype, config
        case dataBytes = "data_bytes", tensors, sha256, source, tokenizer
    }

    /// The manifest of an image of `config` in this engine's layout.
    public init(name: String, config: LlamaConfig, dtype: WeightDType = .f32, sha256: String,
                source: Source? = nil, tokenizer: Tokenizer? = nil) {
        format = Self.formatName
        formatVersion = Self.currentFormatVersion
        layoutVersion = LlamaLayout.version
        self.name = name
        self.dtype = dtype
        self.config = config
        switch dtype {
        case .f32:
            let layout = LlamaLayout(config: config)
            dataBytes = layout.parameterCount * 4
            tensors = layout.tensors.map { TensorEntry(name: $0.name, shape: $0.shape, offset: $0.offset * 4) }
        case .bf16:
            let layout = BF16ImageLayout(config: config)
            dataBytes = layout.byteCount
            tensors = layout.entries.map { TensorEntry(name: $0.name, shape: $0.shape, offset: $0.offset, encoding: $0.packed ? "bf16-panels" : "f32") }
        }
        self.sha256 = sha256
        self.source = source
        self.tokenizer = tokenizer
    }

    /// Canonical JSON: sorted keys, so the same image always gives the same bytes.
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every field is a plain value; encoding cannot fail.
        return try! encoder.encode(self)
    }

    /// Decodes a manifest, naming the field when the JSON is not one.
    public static func decode(_ data: Data, image: String) throws -> WeightImageManifest {
        do {
            return try JSONDecoder().decode(WeightImageManifest.self, from: data)
        } catch let error as DecodingError {
            throw WeightImageError.badManifest(image: image, problem: DecodingProblem(error).description)
        } catch {
            throw WeightImageError.badManifest(image: image, problem: "\(error)")
        }
    }

    /// Checks that this engine can run on the image as described: format, layout version, element type,
    /// architecture, and a tensor table and size that match what the engine computes from the config.
    public func validateForEngine() throws {
        let image = name
        guard format == Self.formatName else {
            throw WeightImageError.manifestMismatch(image: image, field: "format", problem: "'\(format)', expected '\(Self.formatName)'")
        }
        guard formatVersion == Self.currentFormatVersion else {
            throw WeightImageError.unsupportedFormatVersion(image: image, found: formatVersion, supported: Self.currentFormatVersion)
        }
        guard layoutVersion == LlamaLayout.version else {
            throw WeightImageError.layoutVersionMismatch(image: image, imageLayout: layoutVersion, engineLayout: LlamaLayout.version)
        }
        do {
            try config.validate(source: "weight image '\(image)'")
        } catch {
            throw WeightImageError.manifestMismatch(image: image, field: "config", problem: "\(error)")
        }
        guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw WeightImageError.manifestMismatch(image: image, field: "sha256", problem: "'\(sha256)' is not 64 lowercase hex digits")
        }
        let expected = WeightImageManifest(name: name, config: config, dtype: dtype, sha256: sha256)
        guard dataBytes == expected.dataBytes else {
            throw WeightImageError.manifestMismatch(image: image, field: "data_bytes",
                problem: "\(dataBytes), but the config's layout needs \(expected.dataBytes)")
        }
        guard tensors.count == expected.tensors.count else {
            throw WeightImageError.manifestMismatch(image: image, field: "tensors",
                problem: "\(tensors.count) entries, the config's layout has \(expected.tensors.count)")
        }
        for (found, wanted) in zip(tensors, expected.tensors) where found != wanted {
            throw WeightImageError.manifestMismatch(image: image, field: "tensors",
                problem: "entry '\(found.name)' \(found.shape) at byte \(found.offset), the layout has '\(wanted.name)' \(wanted.shape) at byte \(wanted.offset)")
        }
    }
}
