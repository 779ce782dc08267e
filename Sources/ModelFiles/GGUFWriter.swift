import Compute

/// Writes GGUF version 3 files (atomically) with unquantized tensors: F32, F16 or BF16.
/// Used to export models for llama.cpp and by tests that build small models in every format.
public struct GGUFWriter {
    public struct Tensor {
        public let name: String
        /// Row-major shape (slowest-varying first); written to the file fastest-varying first.
        public let shape: [Int]
        public let type: GGMLType
        public let values: UnsafeBufferPointer<Float>
        /// Whatever owns the memory of `values`, kept alive as long as the tensor is: under `-O` an
        /// object can be freed right after its last use, before `write` reads through the pointer.
        public let owner: AnyObject?

        public init(name: String, shape: [Int], type: GGMLType, values: UnsafeBufferPointer<Float>, owner: AnyObject?) {
            precondition([.f32, .f16, .bf16].contains(type), "GGUFWriter writes F32, F16 and BF16 only")
            precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
            self.name = name
            self.shape = shape
            self.type = type
            self.values = values
            self.owner = owner
        }

        /// A tensor whose values are all of `buffer` (which it keeps alive).
        public init(name: String, shape: [Int], type: GGMLType, buffer: AlignedBuffer<Float>) {
            self.init(name: name, shape: shape, type: type, values: UnsafeBufferPointer(buffer.buffer), owner: buffer)
        }
    }

    public var metadata: [(String, GGUFValue)] = []
    public var tensors: [Tensor] = []
    public var alignment = 32

    public init() {}

    public func write(to path: String) throws {
        var header = ByteWriter()
        header.bytes += Array("GGUF".utf8)
        header.append(UInt32(3))
        header.append(UInt64(tensors.count))
        let hasAlignment = metadata.contains { $0.0 == "general.alignment" }
        header.append(UInt64(metadata.count + (hasAlignment || alignment == 32 ? 0 : 1)))
        for (key, value) in metadata {
            header.appendString(key)
            header.appendValue(value)
        }
        if !hasAlignment && alignment != 32 {
            header.appendString("general.alignment")
            header.appendValue(.uint32(UInt32(alignment)))
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            header.appendString(t.name)
            header.append(UInt32(t.shape.count))
            for d in t.shape.reversed() { header.append(UInt64(d)) }
            header.append(t.type.rawValue)
            header.append(UInt64(offset))
            offset += padded(t.values.count * t.type.blockBytes)
        }
        header.bytes += [UInt8](repeating: 0, count: padded(header.bytes.count) - header.bytes.count)

        try AtomicFile.write(to: path) { out in
            try header.bytes.withUnsafeBytes { try out.write($0) }
            for t in tensors {
                var data = ByteWriter()
                data.bytes.reserveCapacity(padded(t.values.count * t.type.blockBytes))
                for v in t.values {
                    switch t.type {
                    case .f32: data.append(v.bitPattern)
                    case .f16: data.append(HalfPrecision.f16(from: v))
                    default: data.append(HalfPrecision.bf16(from: v))
                    }
                }
                data.bytes += [UInt8](repeating: 0, count: padded(data.bytes.count) - data.bytes.count)
                try data.bytes.withUnsafeBytes { try out.write($0) }
            }
        }
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// Little-endian serialization into a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func appendString(_ s: String) {
        append(UInt64(s.utf8.count))
        bytes += Array(s.utf8)
    }

    mutating func appendValue(_ value: GGUFValue, inArray: Bool = false) {
        func tag(_ t: UInt32) { if !inArray { append(t) } }
        switch value {
        case let .uint8(v): tag(0); append(v)
        case let .int8(v): tag(1); append(v)
        case let .uint16(v): tag(2); append(v)
        case let .int16(v): tag(3); append(v)
        case let .uint32(v): tag(4); append(v)
        case let .int32(v): tag(5); append(v)
        case let .float32(v): tag(6); append(v.bitPattern)
        case let .bool(v): tag(7); append(UInt8(v ? 1 : 0))
        case let .string(v): tag(8); appendString(v)
        case let .array(items):
            tag(9)
            append(items.first.map(Self.typeCode) ?? 4)
            append(UInt64(items.count))
            for item in items { appendValue(item, inArray: true) }
        case let .uint64(v): tag(10); append(v)
        case let .int64(v): tag(11); append(v)
        case let .float64(v): tag(12); append(v.bitPattern)
        }
    }

    static func typeCode(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }
}
