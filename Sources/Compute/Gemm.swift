import CBLAS

/// Matrix products on row-major fp32 matrices through OpenBLAS, split across `Parallel.threads`.
///
/// Each worker multiplies a slice of C's columns (or rows, when C is narrow) with a single-threaded
/// OpenBLAS call; OpenBLAS itself stays at one thread (see `Parallel`).
public enum Gemm {
    public enum Transpose { case none, transposed }

    /// The OpenBLAS kernel family in use ("Haswell", "SkylakeX", "Cooperlake", …): chosen from the CPU
    /// at load time unless the environment variable OPENBLAS_CORETYPE names one. Benchmarks print it.
    public static var blasCoreName: String { String(cString: openblas_get_corename()) }

    /// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, all row-major with leading dimensions.
    public static func multiply(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, transA: Transpose = .none,
        b: UnsafePointer<Float>, ldb: Int, transB: Transpose = .none,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        if m == 0 || n == 0 { return }
        let work = m * n * k
        if Parallel.threads == 1 || work < 1 << 18 {
            call(m, n, k, a, lda, transA, b, ldb, transB, c, ldc, alpha, beta)
            return
        }
        if n >= 64 && n >= m / 4 {
            // Split the columns of C: column block j uses columns of op(B) only.
            Parallel.forRanges(n, align: 16) { cols in
                let bOffset = transB == .none ? cols.lowerBound : cols.lowerBound * ldb
                call(m, cols.count, k, a, lda, transA, b + bOffset, ldb, transB,
                     c + cols.lowerBound, ldc, alpha, beta)
            }
        } else {
            Parallel.forRanges(m, align: 4) { rows in
                let aOffset = transA == .none ? rows.lowerBound * lda : rows.lowerBound
                call(rows.count, n, k, a + aOffset, lda, transA, b, ldb, transB,
                     c + rows.lowerBound * ldc, ldc, alpha, beta)
            }
        }
    }

    /// The same product on the calling thread only (for callers that already run in parallel).
    public static func multiplySerial(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, transA: Transpose = .none,
        b: UnsafePointer<Float>, ldb: Int, transB: Transpose = .none,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        if m == 0 || n == 0 { return }
        call(m, n, k, a, lda, transA, b, ldb, transB, c, ldc, alpha, beta)
    }

    @inline(__always)
    private static func call(
        _ m: Int, _ n: Int, _ k: Int,
        _ a: UnsafePointer<Float>, _ lda: Int, _ transA: Transpose,
        _ b: UnsafePointer<Float>, _ ldb: Int, _ transB: Transpose,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float
    ) {
        cblas_sgemm(CblasRowMajor,
                    transA == .none ? CblasNoTrans : CblasTrans,
                    transB == .none ? CblasNoTrans : CblasTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }
}
