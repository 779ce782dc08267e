import CKernels

extension Gemm {
    /// Which implementation of the bf16-weight product runs.
    public enum BF16Kernel: Sendable, CustomStringConvertible {
        /// AVX-512 BF16 (`vdpbf16ps`) when the CPU has it, else portable C. What the model uses.
        case automatic
        /// AVX-512 BF16; only valid when `avx512Available`.
        case avx512
        /// Plain C, any x86-64 (or other) CPU.
        case portable

        /// True when this CPU has AVX-512 F/BW/VL/DQ and BF16.
        public static let avx512Available: Bool = srppo_bf16_gemm_has_avx512() != 0

        /// The implementation `.automatic` resolves to on this CPU.
        public static var resolved: BF16Kernel { avx512Available ? .avx512 : .portable }

        public var description: String {
            switch self {
            case .automatic: return "automatic (\(Self.resolved))"
            case .avx512: return "avx512-bf16"
            case .portable: return "portable"
            }
        }
    }

    /// C[m, W.rows] = bf16(A)[m, W.columns] · Wᵀ + beta · C, with W stored as bf16: the bf16 form of
    /// `multiply(…, transB: .transposed, …)` for `y = x · Wᵀ`. Products are exact and summed in fp32.
    /// C is not read when beta is 0. Split across `Parallel.threads` (rows when there are many,
    /// 32-column panels of W otherwise); every element is summed in the same order whatever the split,
    /// so any thread count gives identical bits.
    public static func multiply(
        m: Int, a: UnsafePointer<Float>, lda: Int, weights w: BF16Matrix,
        c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0, kernel: BF16Kernel = .automatic
    ) {
        let n = w.rows, k = w.columns
        if m == 0 { return }
        let panel = BF16Matrix.panelWidth
        let panels = (n + panel - 1) / panel
        let threads = Parallel.threads
        if threads == 1 || m * n * k < 1 << 18 {
            multiplySerial(m: m, a: a, lda: lda, weights: w, c: c, ldc: ldc, beta: beta, kernel: kernel)
        } else if m >= 192 * threads || panels < 2 * threads {
            // Many rows: each worker converts only its own rows of A and streams all of W.
            Parallel.forRanges(m) { rows in
                multiplyBlock(rows: rows, columns: 0..<n, a: a, lda: lda, weights: w, c: c, ldc: ldc,
                              beta: beta, kernel: kernel)
            }
        } else {
            // Few rows (decode steps, LM-head chunks): split the panels of W.
            Parallel.forRanges(panels) { panelRange in
                let columns = panelRange.lowerBound * panel..<min(n, panelRange.upperBound * panel)
                multiplyBlock(rows: 0..<m, columns: columns, a: a, lda: lda, weights: w, c: c, ldc: ldc,
                              beta: beta, kernel: kernel)
            }
        }
    }

    /// The same product on the calling thread only (for callers that already run in parallel),
    /// optionally for output columns `columns` only (rows `columns` of W): `c` still points at
    /// column 0 of C and only C[·, columns] is written. `columns` must start on a multiple of
    /// `BF16Matrix.panelWidth`; the bits of each element do not depend on the range asked for. `ldc`
    /// only needs to cover `columns`, so C can be a scratch block as wide as the range.
    public static func multiplySerial(
        m: Int, a: UnsafePointer<Float>, lda: Int, weights w: BF16Matrix, columns: Range<Int>? = nil,
        c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0, kernel: BF16Kernel = .automatic
    ) {
        let columns = columns ?? 0..<w.rows
        precondition(columns.lowerBound % BF16Matrix.panelWidth == 0 && columns.lowerBound >= 0 && columns.upperBound <= w.rows,
                     "columns \(columns) must start on a multiple of \(BF16Matrix.panelWidth) and end by \(w.rows)")
        if m == 0 || columns.isEmpty { return }
        multiplyBlock(rows: 0..<m, columns: columns, a: a, lda: lda, weights: w, c: c, ldc: ldc,
                      beta: beta, kernel: kernel)
    }

    /// Rows `rows` of C, columns `columns` (starting on a panel boundary).
    private static func multiplyBlock(
        rows: Range<Int>, columns: Range<Int>, a: UnsafePointer<Float>, lda: Int, weights w: BF16Matrix,
        c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float, kernel: BF16Kernel
    ) {
        // C may be a block only as wide as `columns` (c then points `columns.lowerBound` before it).
        precondition(lda >= w.columns && ldc >= columns.count, "leading dimensions \(lda), \(ldc) too small for \(w.rows)×\(w.columns) weights")
        precondition(rows.upperBound <= Int(Int32.max) && lda <= Int(Int32.max) && ldc <= Int(Int32.max),
                     "bf16 GEMM sizes must fit in 32 bits")
        let function: @convention(c) (UnsafeMutablePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
                                      UnsafePointer<UInt16>?, Int32, Int32, Int32, Int32, Int32, Float) -> Void
        switch kernel {
        case .automatic: function = srppo_bf16_gemm
        case .avx512:
            precondition(BF16Kernel.avx512Available, "the AVX-512 BF16 kernel was asked for on a CPU without AVX-512 BF16")
            function = srppo_bf16_gemm_avx512
        case .portable: function = srppo_bf16_gemm_portable
        }
        function(c + rows.lowerBound * ldc, Int32(ldc), a + rows.lowerBound * lda, Int32(lda), w.packed,
                 Int32(rows.count), Int32(w.rows), Int32(w.columns),
                 Int32(columns.lowerBound), Int32(columns.upperBound), beta)
    }
}
