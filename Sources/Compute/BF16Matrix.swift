import CKernels

/// A frozen weight matrix W[rows, columns] stored as bf16 in the packed layout the bf16 GEMM reads
/// (half the bytes of fp32), used as `y = x · Wᵀ` through `Gemm.multiply(…, weights:)`.
///
/// Layout (see CSupport/CKernels/include/srppo_bf16_gemm.h): panels of 32 rows of W; inside a panel,
/// for each pair of columns (k-pair), the 32 rows' two bf16 values side by side (64 values = one
/// 64-byte vector, the operand of `vdpbf16ps`). Rows past `rows` and an odd last column are zero.
/// Packing is portable C and deterministic (same bytes on every CPU), so packed matrices can be
/// written once into a shared weight image and mapped by other processes as they are.
///
/// Rounding fp32 → bf16: nearest even; values below the smallest normal float become signed zero
/// (what the AVX-512 instructions do with them); NaN stays NaN.
public final class BF16Matrix: @unchecked Sendable {
    /// Output features (rows of W).
    public let rows: Int
    /// Input features (columns of W, the GEMM's k).
    public let columns: Int
    /// The packed bf16 values (`packedCount(rows:columns:)` of them).
    public let packed: UnsafePointer<UInt16>
    /// Keeps the memory behind `packed` alive (an owned buffer or a mapped image).
    private let owner: AnyObject

    /// Packs W[rows, columns] (row stride `rowStride` floats, default `columns`) into new storage.
    public init(packing w: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil) {
        let storage = AlignedBuffer<UInt16>(count: Self.packedCount(rows: rows, columns: columns))
        Self.pack(w, rows: rows, columns: columns, rowStride: rowStride, into: storage.pointer)
        self.rows = rows
        self.columns = columns
        packed = UnsafePointer(storage.pointer)
        owner = storage
    }

    /// A view of already packed values (for instance inside a mapped weight image); `owner` is kept
    /// alive as long as the matrix. The memory should be 64-byte aligned for full speed.
    public init(packed: UnsafePointer<UInt16>, rows: Int, columns: Int, owner: AnyObject) {
        precondition(rows > 0 && columns > 0, "a bf16 matrix needs at least one row and one column")
        self.rows = rows
        self.columns = columns
        self.packed = packed
        self.owner = owner
    }

    /// Rows of W per packed panel: column ranges of a product start on multiples of it.
    public static let panelWidth = Int(SRPPO_BF16_PANEL)

    /// Number of UInt16 values in the packed form of a [rows, columns] matrix.
    public static func packedCount(rows: Int, columns: Int) -> Int {
        precondition(rows > 0 && columns > 0 && rows <= Int(Int32.max) && columns <= Int(Int32.max),
                     "bf16 matrix shape \(rows)×\(columns) out of range")
        return srppo_bf16_packed_count(Int32(rows), Int32(columns))
    }

    /// Packs W[rows, columns] into `destination` (`packedCount(rows:columns:)` values), e.g. a region
    /// of a weight image being built.
    public static func pack(_ w: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil,
                            into destination: UnsafeMutablePointer<UInt16>) {
        let stride = rowStride ?? columns
        precondition(stride >= columns, "row stride \(stride) is smaller than the \(columns) columns")
        _ = packedCount(rows: rows, columns: columns)
        srppo_bf16_pack(destination, w, Int32(rows), Int32(columns), Int32(stride))
    }

    /// W[row, column] as stored (the bf16 value widened to fp32, exactly).
    public func element(row: Int, column: Int) -> Float {
        precondition(row >= 0 && row < rows && column >= 0 && column < columns, "index (\(row), \(column)) out of range")
        return srppo_bf16_packed_get(packed, Int32(rows), Int32(columns), Int32(row), Int32(column))
    }

    /// Writes row `row` of W as `columns` fp32 values (exactly the bf16 values): an embedding lookup
    /// when W is a tied embedding / LM head.
    public func copyRow(_ row: Int, into destination: UnsafeMutablePointer<Float>) {
        precondition(row >= 0 && row < rows, "row \(row) out of range 0..<\(rows)")
        srppo_bf16_packed_row(destination, packed, Int32(columns), Int32(row))
    }

    /// Writes rows `range` of W (all of them by default) as fp32 rows [range.count, columns] (the bf16
    /// values, exactly), split over the workers.
    public func unpack(rows range: Range<Int>? = nil, into destination: UnsafeMutablePointer<Float>) {
        let range = range ?? 0..<rows
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) out of range 0..<\(rows)")
        Parallel.forRanges(range.count) { part in
            for r in part { self.copyRow(range.lowerBound + r, into: destination + r * self.columns) }
        }
    }

    /// Bytes of the packed storage.
    public var packedBytes: Int { Self.packedCount(rows: rows, columns: columns) * 2 }
}

extension HalfPrecision {
    /// destination[i] = bf16(source[i]) widened back to fp32, with the bf16 GEMM's rounding (nearest
    /// even, subnormals to zero). `destination` may be `source`. This is exactly what the GEMM
    /// multiplies, so it serves references and fp32 paths that must agree with the bf16 one.
    public static func roundThroughBF16(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>,
                                        count: Int) {
        srppo_bf16_round(destination, source, count)
    }
}
