/// A GGUF file (llama.cpp's format, versions 2 and 3): typed metadata, tensor infos and the tensor
/// data, mapped read-only. Layout (little-endian):
///
///     "GGUF" u32:version u64:tensor_count u64:kv_count
///     kv_count × (string:key u32:value_type value)
///     tensor_count × (string:name u32:n_dims u64[n_dims]:ne u32:ggml_type u64:offset)
///     padding to `general.alignment` (default 32), then the tensor data
///
/// `ne` lists dimensions fastest-varying first, so a PyTorch weight [out, in] appears as ne [in, out];
/// `GGUFTensorInfo.shape` gives the row-major (PyTorch/NumPy) order.
public struct GGUFFile {
    public let path: String
    public let version: UInt32
    /// Metadata in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Offset of the tensor data section.
    public let dataOffset: Int
    let file: MappedFile

    /// Limits on what a header may claim, so a corrupt or hostile file fails cleanly instead of
    /// allocating without bound.
    public enum Limits {
        public static let maxStringBytes = 64 << 20
        public static let maxArrayCount = 1 << 26
        public static let maxKeyValues = 1 << 20
        public static let maxTensors = 1 << 20
        public static let maxDimensions = 8
    }

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var reader = ByteReader(file.bytes, path: path)
        let magic = try reader.readBytes(4, "magic")
        guard Array(magic) == Array("GGUF".utf8) else {
            throw ModelFileError.badMagic(path: path, found: magic.map { String(format2hex: $0) }.joined(separator: " "))
        }
        version = try reader.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw ModelFileError.unsupportedVersion(path: path, version: version) }
        let tensorCount = try reader.read(UInt64.self, "tensor count")
        let kvCount = try reader.read(UInt64.self, "metadata count")
        guard kvCount <= UInt64(Limits.maxKeyValues) else {
            throw ModelFileError.headerTooLarge(path: path, what: "metadata count", size: Int(clamping: kvCount), limit: Limits.maxKeyValues)
        }
        guard tensorCount <= UInt64(Limits.maxTensors) else {
            throw ModelFileError.headerTooLarge(path: path, what: "tensor count", size: Int(clamping: tensorCount), limit: Limits.maxTensors)
        }

        var keys: [String] = []
        var values: [String: GGUFValue] = [:]
        for index in 0..<Int(kvCount) {
            let key = try Self.readString(&reader, "metadata key #\(index)")
            let type = try reader.read(UInt32.self, "type of '\(key)'")
            let value = try Self.readValue(&reader, type: type, key: key)
            if values[key] == nil { keys.append(key) }
            values[key] = value
        }
        metadataKeys = keys
        metadata = values

        alignment = try {
            guard let value = values["general.alignment"] else { return 32 }
            guard let a = value.integer, a > 0, a & (a - 1) == 0, a <= 1 << 20 else {
                throw ModelFileError.badMetadata(path: path, key: "general.alignment", problem: "must be a power of two")
            }
            return a
        }()

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(Int(tensorCount))
        for index in 0..<Int(tensorCount) {
            let name = try Self.readString(&reader, "name of tensor #\(index)")
            let nDims = try reader.read(UInt32.self, "dimensions of '\(name)'")
            guard nDims >= 1, nDims <= UInt32(Limits.maxDimensions) else {
                throw ModelFileError.badTensorData(path: path, tensor: name, problem: "has \(nDims) dimensions")
            }
            var ne: [Int] = []
            for _ in 0..<nDims {
                let d = try reader.read(UInt64.self, "shape of '\(name)'")
                guard d <= UInt64(Int32.max) else {
                    throw ModelFileError.badTensorData(path: path, tensor: name, problem: "dimension \(d) is too large")
                }
                ne.append(Int(d))
            }
            let rawType = try reader.read(UInt32.self, "type of '\(name)'")
            let offset = try reader.read(UInt64.self, "offset of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw ModelFileError.unsupportedType(path: path, tensor: name, type: "ggml type \(rawType)")
            }
            infos.append(GGUFTensorInfo(name: name, ne: ne, type: type, relativeOffset: Int(clamping: offset)))
        }
        dataOffset = (reader.offset + alignment - 1) / alignment * alignment
        tensors = infos

        // Check every tensor lies inside the file, so later reads need no checks.
        for info in infos {
            guard let count = info.elementCount else {
                throw ModelFileError.badTensorData(path: path, tensor: info.name, problem: "element count overflows")
            }
            guard count % info.type.blockElements == 0 else {
                throw ModelFileError.badTensorData(path: path, tensor: info.name,
                    problem: "\(count) elements is not a multiple of the \(info.type) block size \(info.type.blockElements)")
            }
            // Offsets and sizes come from the file: every sum is checked (a crafted offset near
            // Int.max must not trap).
            let (bytes, sizeOverflow) = (count / info.type.blockElements).multipliedReportingOverflow(by: info.type.blockBytes)
            let (start, startOverflow) = dataOffset.addingReportingOverflow(info.relativeOffset)
            let (end, endOverflow) = start.addingReportingOverflow(bytes)
            guard !sizeOverflow, !startOverflow, !endOverflow, end <= file.bytes.count else {
                throw ModelFileError.truncated(path: path, what: "data of tensor '\(info.name)'")
            }
        }
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensors.first { $0.name == name }
    }

    /// Raw bytes of a tensor as stored (quantized blocks for quantized types).
    public func rawData(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + info.relativeOffset
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<start + info.byteCount])
    }

    /// Dequantizes a tensor to fp32 into `destination` (room for `info.elementCount` floats).
    public func dequantize(_ info: GGUFTensorInfo, into destination: UnsafeMutablePointer<Float>) throws {
        try Dequantize.decode(type: info.type, from: rawData(info), count: info.elementCount!,
                              into: destination, path: path, tensor: info.name)
    }

    /// Dequantizes a tensor to a new fp32 array.
    public func dequantize(_ info: GGUFTensorInfo) throws -> [Float] {
        let count = info.elementCount!
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try dequantize(info, into: buffer.baseAddress!)
            initialized = count
        }
    }

    // MARK: Metadata accessors that fail with the key's name

    public func string(_ key: String) throws -> String {
        guard let value = metadata[key] else { throw ModelFileError.badMetadata(path: path, key: key, problem: "missing") }
        guard case let .string(s) = value else { throw ModelFileError.badMetadata(path: path, key: key, problem: "expected a string") }
        return s
    }

    public func integer(_ key: String) throws -> Int {
        guard let value = metadata[key] else { throw ModelFileError.badMetadata(path: path, key: key, problem: "missing") }
        guard let i = value.integer else { throw ModelFileError.badMetadata(path: path, key: key, problem: "expected an integer") }
        return i
    }

    public func float(_ key: String) throws -> Double {
        guard let value = metadata[key] else { throw ModelFileError.badMetadata(path: path, key: key, problem: "missing") }
        guard let d = value.double else { throw ModelFileError.badMetadata(path: path, key: key, problem: "expected a number") }
        return d
    }

    // MARK: Parsing

    private static func readString(_ reader: inout ByteReader, _ what: @autoclosure () -> String) throws -> String {
        let length = try reader.read(UInt64.self, what())
        guard length <= UInt64(Limits.maxStringBytes) else {
            throw ModelFileError.headerTooLarge(path: reader.path, what: "length of \(what())", size: Int(clamping: length), limit: Limits.maxStringBytes)
        }
        let bytes = try reader.readBytes(Int(length), what())
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func readValue(_ reader: inout ByteReader, type: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try reader.read(UInt8.self, "'\(key)'"))
        case 1: return .int8(try reader.read(Int8.self, "'\(key)'"))
        case 2: return .uint16(try reader.read(UInt16.self, "'\(key)'"))
        case 3: return .int16(try reader.read(Int16.self, "'\(key)'"))
        case 4: return .uint32(try reader.read(UInt32.self, "'\(key)'"))
        case 5: return .int32(try reader.read(Int32.self, "'\(key)'"))
        case 6: return .float32(Float(bitPattern: try reader.read(UInt32.self, "'\(key)'")))
        case 7:
            let b = try reader.read(UInt8.self, "'\(key)'")
            guard b <= 1 else { throw ModelFileError.badMetadata(path: reader.path, key: key, problem: "bool value \(b)") }
            return .bool(b == 1)
        case 8: return .string(try readString(&reader, "'\(key)'"))
        case 9:
            guard depth == 0 else { throw ModelFileError.badMetadata(path: reader.path, key: key, problem: "nested arrays are not supported") }
            let elementType = try reader.read(UInt32.self, "array type of '\(key)'")
            let count = try reader.read(UInt64.self, "array length of '\(key)'")
            guard count <= UInt64(Limits.maxArrayCount) else {
                throw ModelFileError.headerTooLarge(path: reader.path, what: "array '\(key)'", size: Int(clamping: count), limit: Limits.maxArrayCount)
            }
            // Every element takes at least one byte: reject counts the remaining file cannot hold
            // before reserving memory for them.
            try reader.require(Int(count), "array '\(key)'")
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                items.append(try readValue(&reader, type: elementType, key: key, depth: depth + 1))
            }
            return .array(items)
        case 10: return .uint64(try reader.read(UInt64.self, "'\(key)'"))
        case 11: return .int64(try reader.read(Int64.self, "'\(key)'"))
        case 12: return .float64(Double(bitPattern: try reader.read(UInt64.self, "'\(key)'")))
        default:
            throw ModelFileError.badMetadata(path: reader.path, key: key, problem: "unknown value type \(type)")
        }
    }
}

/// One GGUF metadata value.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    public var integer: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return integer.map(Double.init)
        }
    }

    public var string: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var bool: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    public var array: [GGUFValue]? {
        if case let .array(a) = self { return a }
        return nil
    }
}

public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    /// Dimensions as stored, fastest-varying first.
    public let ne: [Int]
    public let type: GGMLType
    /// Offset from the start of the data section.
    public let relativeOffset: Int

    /// Row-major shape (slowest-varying first), as PyTorch and NumPy write it.
    public var shape: [Int] { ne.reversed() }

    public var elementCount: Int? {
        var total = 1
        for d in ne {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = p
        }
        return total
    }

    public var byteCount: Int { (elementCount ?? 0) / type.blockElements * type.blockBytes }
}

extension String {
    init(format2hex byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
