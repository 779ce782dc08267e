import Foundation
import Compute

/// Element types SRPPO reads and writes in safetensors files.
public enum SafetensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"

    public var size: Int { self == .f32 ? 4 : 2 }
}

public struct SafetensorsTensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range inside the data section.
    public let dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file: `u64 header_size`, a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {…}}`,
/// then the raw tensor bytes. Mapped read-only.
public struct SafetensorsFile {
    public let path: String
    public let tensors: [String: SafetensorsTensorInfo]
    /// Tensor names in file (data offset) order.
    public let tensorNames: [String]
    public let metadata: [String: String]
    let file: MappedFile
    let dataOffset: Int

    /// The reference implementation's own limit on the JSON header.
    public static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var reader = ByteReader(file.bytes, path: path)
        let headerSize = try reader.read(UInt64.self, "header size")
        guard headerSize <= UInt64(Self.maxHeaderBytes) else {
            throw ModelFileError.headerTooLarge(path: path, what: "safetensors header", size: Int(clamping: headerSize), limit: Self.maxHeaderBytes)
        }
        let headerBytes = try reader.readBytes(Int(headerSize), "safetensors header")
        dataOffset = 8 + Int(headerSize)
        let dataSize = file.bytes.count - dataOffset

        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes))
        } catch {
            throw ModelFileError.badMetadata(path: path, key: "header", problem: "not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw ModelFileError.badMetadata(path: path, key: "header", problem: "expected a JSON object")
        }
        var infos: [String: SafetensorsTensorInfo] = [:]
        var meta: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else {
                    throw ModelFileError.badMetadata(path: path, key: "__metadata__", problem: "expected an object of strings")
                }
                meta = m
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw ModelFileError.badTensorData(path: path, tensor: name, problem: "header entry needs dtype, shape and two data_offsets")
            }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw ModelFileError.unsupportedType(path: path, tensor: name, type: dtypeName)
            }
            guard shape.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }), shape.count <= 8 else {
                throw ModelFileError.badTensorData(path: path, tensor: name, problem: "invalid shape \(shape)")
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw ModelFileError.badTensorData(path: path, tensor: name, problem: "shape \(shape) overflows") }
                count = p
            }
            let begin = offsets[0], end = offsets[1]
            guard begin >= 0, begin <= end, end - begin == count * dtype.size else {
                throw ModelFileError.badTensorData(path: path, tensor: name,
                    problem: "data_offsets \(offsets) do not match \(count) elements of \(dtypeName)")
            }
            guard end <= dataSize else {
                throw ModelFileError.truncated(path: path, what: "data of tensor '\(name)'")
            }
            infos[name] = SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
        }
        tensors = infos
        tensorNames = infos.values.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }.map(\.name)
        metadata = meta
    }

    public func rawData(_ info: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataOffset + info.dataRange.lowerBound)..<(dataOffset + info.dataRange.upperBound)])
    }

    /// Converts a tensor to fp32 into `destination` (room for `info.elementCount` floats).
    public func read(_ info: SafetensorsTensorInfo, into destination: UnsafeMutablePointer<Float>) throws {
        let raw = rawData(info)
        guard let base = raw.baseAddress else { return }
        let count = info.elementCount
        switch info.dtype {
        case .f32:
            for i in 0..<count { destination[i] = base.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { destination[i] = HalfPrecision.float(fromF16: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<count { destination[i] = HalfPrecision.float(fromBF16: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        }
        for i in 0..<count where !destination[i].isFinite {
            throw ModelFileError.badTensorData(path: path, tensor: info.name, problem: "value #\(i) is not finite")
        }
    }

    public func read(_ info: SafetensorsTensorInfo) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
            if let base = buffer.baseAddress { try read(info, into: base) }
            initialized = info.elementCount
        }
    }
}

/// Writes safetensors files (atomically: temp file, fsync, rename).
public enum SafetensorsWriter {
    public struct Tensor {
        public let name: String
        public let shape: [Int]
        /// fp32 values; converted to `dtype` on write.
        public let values: UnsafeBufferPointer<Float>
        /// Whatever owns the memory of `values`, kept alive as long as the tensor is: under `-O` an
        /// object can be freed right after its last use, before `write` reads through the pointer.
        public let owner: AnyObject?

        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>, owner: AnyObject?) {
            precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
            self.name = name
            self.shape = shape
            self.values = values
            self.owner = owner
        }

        /// A tensor whose values are all of `buffer` (which it keeps alive).
        public init(name: String, shape: [Int], buffer: AlignedBuffer<Float>) {
            self.init(name: name, shape: shape, values: UnsafeBufferPointer(buffer.buffer), owner: buffer)
        }
    }

    public static func write(_ tensors: [Tensor], dtype: SafetensorsDType = .f32,
                             metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors {
            let size = t.values.count * dtype.size
            header[t.name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data section starts 8-byte aligned.
        while (json.count % 8) != 0 { json.append(0x20) }

        try AtomicFile.write(to: path) { out in
            var size = UInt64(json.count).littleEndian
            try withUnsafeBytes(of: &size) { try out.write($0) }
            try json.withUnsafeBytes { try out.write($0) }
            let chunk = 1 << 16
            var staging = [UInt8](repeating: 0, count: chunk * 4)
            for t in tensors {
                var start = 0
                while start < t.values.count {
                    let n = min(chunk, t.values.count - start)
                    let bytes = staging.withUnsafeMutableBytes { raw -> Int in
                        switch dtype {
                        case .f32:
                            for i in 0..<n { raw.storeBytes(of: t.values[start + i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                        case .f16:
                            for i in 0..<n { raw.storeBytes(of: HalfPrecision.f16(from: t.values[start + i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                        case .bf16:
                            for i in 0..<n { raw.storeBytes(of: HalfPrecision.bf16(from: t.values[start + i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                        }
                        return n * dtype.size
                    }
                    try staging.withUnsafeBytes { try out.write(UnsafeRawBufferPointer(rebasing: $0[0..<bytes])) }
                    start += n
                }
            }
        }
    }
}
