import Tensor
import XCTest

/// The fp32 `Gemm` (OpenBLAS split by `Parallel`) against a float64 reference, on odd shapes and
/// both transposes, serial and split across threads (by columns and by rows).
/// Tolerance: (k + 2)·2⁻²⁴·(α·Σ|a·b| + |β·c|), the fp32 summation bound.
final class GemmTests: XCTestCase {
    func testMatchesFloat64ReferenceAcrossShapesTransposesAndThreads() {
        var random = SeededRandom(seed: 21)
        // (m, n, k): tiny, odd, column-split (n ≥ 64) and row-split (n small, m large) sizes.
        let shapes = [(1, 1, 1), (7, 63, 65), (65, 127, 7), (127, 577, 63), (600, 7, 577), (64, 600, 130)]
        for (m, n, k) in shapes {
            for transA in [Gemm.Transpose.none, .transposed] {
                for transB in [Gemm.Transpose.none, .transposed] {
                    let lda = (transA == .none ? k : m) + 1, ldb = (transB == .none ? n : k) + 2, ldc = n + 3
                    let a = random.floats((transA == .none ? m : k) * lda)
                    let b = random.floats((transB == .none ? k : n) * ldb)
                    let c0 = random.floats(m * ldc)
                    let alpha: Float = 0.75, beta: Float = 0.5
                    func A(_ i: Int, _ p: Int) -> Double { Double(transA == .none ? a[i * lda + p] : a[p * lda + i]) }
                    func B(_ p: Int, _ j: Int) -> Double { Double(transB == .none ? b[p * ldb + j] : b[j * ldb + p]) }
                    var results: [[Float]] = []
                    for threads in [1, 2] {
                        var c = c0
                        withThreads(threads) {
                            Gemm.multiply(m: m, n: n, k: k, a: a, lda: lda, transA: transA, b: b, ldb: ldb, transB: transB,
                                          c: &c, ldc: ldc, alpha: alpha, beta: beta)
                        }
                        results.append(c)
                    }
                    // Splitting C by rows or columns leaves each element's k-sum inside one OpenBLAS
                    // call, so thread counts give identical bits (checked with the Haswell, SkylakeX,
                    // Cooperlake, Zen and Prescott kernels).
                    XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern),
                                   "\(m)×\(n)×\(k) \(transA)/\(transB): 1 and 2 threads differ")
                    for (t, c) in results.enumerated() {
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0, magnitude = 0.0
                                for p in 0..<k {
                                    sum += A(i, p) * B(p, j)
                                    magnitude += abs(A(i, p) * B(p, j))
                                }
                                let prior = Double(beta) * Double(c0[i * ldc + j])
                                let want = Double(alpha) * sum + prior
                                let tolerance = Double(k + 2) * 0x1p-24 * (Double(alpha) * magnitude + abs(prior))
                                let got = c[i * ldc + j]
                                if abs(Double(got) - want) > tolerance {
                                    XCTFail("\(m)×\(n)×\(k) \(transA)/\(transB), \(t + 1) threads: C[\(i), \(j)] = \(got), want \(want)")
                                    return
                                }
                            }
                            for j in n..<ldc where c[i * ldc + j] != c0[i * ldc + j] {
                                XCTFail("\(m)×\(n)×\(k): padding C[\(i), \(j)] was written")
                                return
                            }
                        }
                    }
                }
            }
        }
    }
}
