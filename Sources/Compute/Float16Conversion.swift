/// Conversions between fp32 and the 16-bit formats found in checkpoints.
public enum HalfPrecision {
    /// bfloat16 bits → Float (exact: bf16 is the top half of an fp32).
    @inline(__always)
    public static func float(fromBF16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Float → bfloat16 bits, rounding to nearest even (NaN stays NaN).
    @inline(__always)
    public static func bf16(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }

    /// IEEE half bits → Float (exact).
    @inline(__always)
    public static func float(fromF16 bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    /// Float → IEEE half bits, rounding to nearest even.
    @inline(__always)
    public static func f16(from value: Float) -> UInt16 {
        Float16(value).bitPattern
    }
}
