import Compute

/// ggml tensor types this reader knows. Values are ggml's numbering.
public enum GGMLType: UInt32, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    /// Elements per block (1 for unquantized types).
    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q4_K, .q5_K, .q6_K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18     // f16 d, 16 bytes of nibbles
        case .q4_1: return 20     // f16 d, f16 m, 16 bytes of nibbles
        case .q5_0: return 22     // f16 d, u32 high bits, 16 bytes of nibbles
        case .q5_1: return 24     // f16 d, f16 m, u32 high bits, 16 bytes of nibbles
        case .q8_0: return 34     // f16 d, 32 × i8
        case .q4_K: return 144    // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
        case .q5_K: return 176    // as q4_K plus 32 bytes of fifth bits
        case .q6_K: return 210    // 128 bytes low nibbles, 64 bytes 2-bit highs, 16 × i8 scales, f16 d
        }
    }

    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        }
    }
}

/// Block decoders for each `GGMLType`, following ggml's reference dequantization.
enum Dequantize {
    static func decode(type: GGMLType, from raw: UnsafeRawBufferPointer, count: Int,
                       into out: UnsafeMutablePointer<Float>, path: String, tensor: String) throws {
        let blocks = count / type.blockElements
        precondition(raw.count >= blocks * type.blockBytes)
        let src = raw.baseAddress!
        switch type {
        case .f32:
            for i in 0..<count { out[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { out[i] = HalfPrecision.float(fromF16: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<count { out[i] = HalfPrecision.float(fromBF16: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0:
            for b in 0..<blocks { decode32(type, src + b * type.blockBytes, out + b * 32) }
        case .q4_K:
            for b in 0..<blocks { decodeQ4K(src + b * 144, out + b * 256) }
        case .q5_K:
            for b in 0..<blocks { decodeQ5K(src + b * 176, out + b * 256) }
        case .q6_K:
            for b in 0..<blocks { decodeQ6K(src + b * 210, out + b * 256) }
        }
        for i in 0..<count where !out[i].isFinite {
            throw ModelFileError.badTensorData(path: path, tensor: tensor, problem: "value #\(i) is not finite")
        }
    }

    @inline(__always)
    private static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        HalfPrecision.float(fromF16: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The 32-element block types.
    private static func decode32(_ type: GGMLType, _ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0)
        switch type {
        case .q8_0:
            let qs = (block + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { y[j] = Float(qs[j]) * d }
        case .q4_0:
            let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                y[j] = Float(Int(qs[j] & 0x0F) - 8) * d
                y[j + 16] = Float(Int(qs[j] >> 4) - 8) * d
            }
        case .q4_1:
            let m = half(block, 2)
            let qs = (block + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                y[j] = Float(qs[j] & 0x0F) * d + m
                y[j + 16] = Float(qs[j] >> 4) * d + m
            }
        case .q5_0, .q5_1:
            let hasMin = type == .q5_1
            let m: Float = hasMin ? half(block, 2) : 0
            let qhOffset = hasMin ? 4 : 2
            let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: qhOffset, as: UInt32.self))
            let qs = (block + qhOffset + 4).assumingMemoryBound(to: UInt8.self)
            let bias = hasMin ? 0 : 16
            for j in 0..<16 {
                let high0 = Int((qh >> UInt32(j)) << 4) & 0x10
                let high1 = Int(qh >> UInt32(j + 12)) & 0x10
                let q0 = (Int(qs[j] & 0x0F) | high0) - bias
                let q1 = (Int(qs[j] >> 4) | high1) - bias
                y[j] = Float(q0) * d + m
                y[j + 16] = Float(q1) * d + m
            }
        default:
            preconditionFailure("not a 32-element block type: \(type)")
        }
    }

    /// Scale and min `j` (0..<8) of a K-quant super-block, packed as 6-bit values in 12 bytes.
    @inline(__always)
    private static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
        if j < 4 {
            return (Float(q[j] & 63), Float(q[j + 4] & 63))
        }
        let scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4)
        let min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4)
        return (Float(scale), Float(min))
    }

    private static func decodeQ4K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0), dmin = half(block, 2)
        let scales = (block + 4).assumingMemoryBound(to: UInt8.self)
        var q = (block + 16).assumingMemoryBound(to: UInt8.self)
        var out = y
        for group in 0..<4 {
            let (sc1, m1) = scaleMin(2 * group, scales)
            let (sc2, m2) = scaleMin(2 * group + 1, scales)
            for l in 0..<32 { out[l] = d * sc1 * Float(q[l] & 0x0F) - dmin * m1 }
            for l in 0..<32 { out[32 + l] = d * sc2 * Float(q[l] >> 4) - dmin * m2 }
            q += 32
            out += 64
        }
    }

    private static func decodeQ5K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0), dmin = half(block, 2)
        let scales = (block + 4).assumingMemoryBound(to: UInt8.self)
        let qh = (block + 16).assumingMemoryBound(to: UInt8.self)
        var ql = (block + 48).assumingMemoryBound(to: UInt8.self)
        var out = y
        var u1: UInt8 = 1, u2: UInt8 = 2
        for group in 0..<4 {
            let (sc1, m1) = scaleMin(2 * group, scales)
            let (sc2, m2) = scaleMin(2 * group + 1, scales)
            for l in 0..<32 {
                out[l] = d * sc1 * Float(Int(ql[l] & 0x0F) + (qh[l] & u1 != 0 ? 16 : 0)) - dmin * m1
            }
            for l in 0..<32 {
                out[32 + l] = d * sc2 * Float(Int(ql[l] >> 4) + (qh[l] & u2 != 0 ? 16 : 0)) - dmin * m2
            }
            ql += 32
            out += 64
            u1 <<= 2
            u2 <<= 2
        }
    }

    private static func decodeQ6K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        var ql = block.assumingMemoryBound(to: UInt8.self)
        var qh = (block + 128).assumingMemoryBound(to: UInt8.self)
        var sc = (block + 192).assumingMemoryBound(to: Int8.self)
        let d = half(block, 208)
        var out = y
        for _ in 0..<2 {
            for l in 0..<32 {
                let i = l / 16
                let q1 = Int((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32
                let q2 = Int((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32
                let q3 = Int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                let q4 = Int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                out[l] = d * Float(sc[i]) * Float(q1)
                out[l + 32] = d * Float(sc[i + 2]) * Float(q2)
                out[l + 64] = d * Float(sc[i + 4]) * Float(q3)
                out[l + 96] = d * Float(sc[i + 6]) * Float(q4)
            }
            out += 128
            ql += 64
            qh += 32
            sc += 8
        }
    }
}
