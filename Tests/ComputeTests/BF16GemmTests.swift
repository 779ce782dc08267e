import Compute
import XCTest

/// The bf16-weight GEMM against float64 references.
///
/// Tolerances (u = 2⁻²⁴, the fp32 unit roundoff; S = Σ_k |a_k·w_k| + |β·c₀| per output element):
/// - against float64 sums of the bf16-rounded inputs: (k + 2)·u·S — the classic bound for summing
///   k + 1 exactly known terms in fp32 in any order (products of two bf16 values are exact in fp32);
/// - against the fp32 (unrounded) inputs: additionally (2⁻⁷ + 2⁻¹⁶)·Σ|a·w|, the rounding of both
///   factors to bf16 (8 significant bits: relative error ≤ 2⁻⁸ each);
/// - portable against AVX-512 on the same inputs: twice the first bound (two summation orders).
final class BF16GemmTests: XCTestCase {
    /// (m, n, k): odd sizes, edges of the 32-column panels and 12-row tiles, several k-blocks
    /// (k = 641 and 1536 need 2 and 3), more rows than one 192-row block (m = 200).
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 7, 63), (7, 1, 65), (63, 65, 127), (65, 127, 7), (12, 32, 64), (13, 33, 2),
        (127, 33, 577), (13, 577, 64), (3, 96, 641), (5, 31, 1536), (200, 47, 96),
    ]

    static let u = 0x1p-24

    struct Problem {
        let m, n, k, lda, ldc: Int
        let a: [Float]
        let w: [Float]
        let c0: [Float]
        let beta: Float

        init(_ m: Int, _ n: Int, _ k: Int, beta: Float, seed: UInt64, padding: Int = 0) {
            var random = SeededRandom(seed: seed)
            self.m = m; self.n = n; self.k = k; self.beta = beta
            lda = k + padding
            ldc = n + padding
            a = random.floats(m * lda, -2, 2)
            w = random.floats(n * k, -0.5, 0.5)
            c0 = random.floats(m * ldc, -1, 1)
        }

        /// Runs the GEMM on a copy of c0.
        func run(_ kernel: Gemm.BF16Kernel, matrix: BF16Matrix, serial: Bool = false) -> [Float] {
            var c = c0
            a.withUnsafeBufferPointer { a in
                c.withUnsafeMutableBufferPointer { c in
                    if serial {
                        Gemm.multiplySerial(m: m, a: a.baseAddress!, lda: lda, weights: matrix, c: c.baseAddress!, ldc: ldc,
                                            beta: beta, kernel: kernel)
                    } else {
                        Gemm.multiply(m: m, a: a.baseAddress!, lda: lda, weights: matrix, c: c.baseAddress!, ldc: ldc,
                                      beta: beta, kernel: kernel)
                    }
                }
            }
            return c
        }

        func matrix() -> BF16Matrix {
            w.withUnsafeBufferPointer { BF16Matrix(packing: $0.baseAddress!, rows: n, columns: k) }
        }

        /// Float64 reference on the given factors; returns (value, S) per element of C.
        func reference(a: [Float], w: [Float]) -> [(value: Double, magnitude: Double)] {
            var out: [(Double, Double)] = []
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, magnitude = 0.0
                    for kk in 0..<k {
                        let p = Double(a[i * lda + kk]) * Double(w[j * k + kk])
                        sum += p
                        magnitude += abs(p)
                    }
                    let prior = beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j])
                    out.append((sum + prior, magnitude + abs(prior)))
                }
            }
            return out
        }
    }

    static func rounded(_ x: [Float]) -> [Float] {
        var out = x
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { HalfPrecision.roundThroughBF16(src.baseAddress!, into: $0.baseAddress!, count: x.count) }
        }
        return out
    }

    func kernels() -> [Gemm.BF16Kernel] {
        Gemm.BF16Kernel.avx512Available ? [.portable, .avx512] : [.portable]
    }

    /// Checks C against a reference with tolerance `relative · S`, and that the padding columns of C
    /// (ldc > n) still hold their old values.
    func check(_ c: [Float], _ p: Problem, _ reference: [(value: Double, magnitude: Double)], relative: Double,
               _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        for i in 0..<p.m {
            for j in 0..<p.ldc {
                let got = c[i * p.ldc + j]
                if j >= p.n {
                    XCTAssertEqual(got, p.c0[i * p.ldc + j], "\(label): padding C[\(i), \(j)] was written", file: file, line: line)
                    continue
                }
                let (want, magnitude) = reference[i * p.n + j]
                let error = abs(Double(got) - want)
                if error > relative * magnitude + 1e-37 {
                    XCTFail("\(label): C[\(i), \(j)] = \(got), want \(want) (error \(error) > \(relative) × \(magnitude))",
                            file: file, line: line)
                    return
                }
            }
        }
    }

    func testRoundingIsNearestEvenWithSubnormalsToZero() {
        // Independent reference: of the two bf16 neighbours, the closer in Double; ties to the even one.
        func reference(_ x: Float) -> Float {
            if x.isNaN || x.isInfinite { return x }
            if abs(x) < Float.leastNormalMagnitude { return x.sign == .minus ? -0.0 : 0.0 }
            let down = Float(bitPattern: x.bitPattern & 0xFFFF_0000)
            let up = Float(bitPattern: (x.bitPattern & 0xFFFF_0000) &+ 0x1_0000)
            // Past the largest bf16 the upper neighbour is infinity, which RNE reaches from 2¹²⁸ on.
            let upValue = up.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(up)
            let dDown = abs(Double(x) - Double(down)), dUp = abs(Double(x) - upValue)
            if dDown != dUp { return dDown < dUp ? down : up }
            return (down.bitPattern >> 16) & 1 == 0 ? down : up
        }
        var random = SeededRandom(seed: 1)
        var values: [Float] = [0, -0.0, 1, -1, 1.00390625, 1.01171875, 1.0 + 1.0 / 512, 3.0e38, -3.4e38,
                               Float.greatestFiniteMagnitude, Float.leastNormalMagnitude, Float.leastNonzeroMagnitude,
                               -Float.leastNormalMagnitude.nextDown, .infinity, -.infinity]
        values += (0..<10000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: random.next())) }.filter { !$0.isNaN }
        let rounded = Self.rounded(values)
        for (x, r) in zip(values, rounded) {
            let want = reference(x)
            XCTAssertEqual(r.bitPattern, want.bitPattern, "bf16(\(x)) = \(r), want \(want)")
        }
        let nan = Self.rounded([Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001)])
        XCTAssertTrue(nan.allSatisfy(\.isNaN), "NaN must stay NaN, got \(nan)")
    }

    func testPackedLayoutIsTheDocumentedOne() {
        for (n, k) in [(1, 1), (33, 7), (64, 64), (65, 3)] {
            var random = SeededRandom(seed: UInt64(n * 1000 + k))
            let w = random.floats(n * k)
            let matrix = w.withUnsafeBufferPointer { BF16Matrix(packing: $0.baseAddress!, rows: n, columns: k) }
            let kEven = (k + 1) / 2 * 2
            let panels = (n + 31) / 32
            XCTAssertEqual(BF16Matrix.packedCount(rows: n, columns: k), panels * 32 * kEven)
            let wRounded = Self.rounded(w)
            let packed = UnsafeBufferPointer(start: matrix.packed, count: BF16Matrix.packedCount(rows: n, columns: k))
            var seen = [Bool](repeating: false, count: packed.count)
            for r in 0..<n {
                for c in 0..<k {
                    let index = (r / 32) * 32 * kEven + (c / 2) * 64 + (r % 32) * 2 + c % 2
                    XCTAssertEqual(packed[index], UInt16(wRounded[r * k + c].bitPattern >> 16), "W[\(r), \(c)] of \(n)×\(k)")
                    XCTAssertEqual(matrix.element(row: r, column: c), wRounded[r * k + c])
                    seen[index] = true
                }
            }
            for (i, value) in packed.enumerated() where !seen[i] {
                XCTAssertEqual(value, 0, "padding value \(i) of \(n)×\(k) is not zero")
            }
            var unpacked = [Float](repeating: .nan, count: n * k)
            unpacked.withUnsafeMutableBufferPointer { matrix.unpack(into: $0.baseAddress!) }
            XCTAssertEqual(unpacked.map(\.bitPattern), wRounded.map(\.bitPattern), "unpack of \(n)×\(k)")
        }
    }

    func testMatchesFloat64ReferenceOnRoundedInputs() {
        for (index, s) in Self.shapes.enumerated() {
            for beta: Float in [0, 1, 0.5] {
                let p = Problem(s.m, s.n, s.k, beta: beta, seed: UInt64(index * 10 + 7), padding: index % 2 * 3)
                let reference = p.reference(a: Self.rounded(p.a), w: Self.rounded(p.w))
                let matrix = p.matrix()
                for kernel in kernels() {
                    check(p.run(kernel, matrix: matrix), p, reference, relative: Double(s.k + 2) * Self.u,
                          "\(kernel) \(s) beta \(beta)")
                }
            }
        }
    }

    func testMatchesFp32WithinBF16Rounding() {
        for (index, s) in Self.shapes.enumerated() {
            let p = Problem(s.m, s.n, s.k, beta: 1, seed: UInt64(index + 100))
            let reference = p.reference(a: p.a, w: p.w)
            let relative = 0x1p-7 + 0x1p-16 + Double(s.k + 2) * Self.u * 1.01
            check(p.run(.automatic, matrix: p.matrix()), p, reference, relative: relative, "\(s) against fp32")
        }
    }

    func testPortableAgreesWithAVX512() throws {
        try XCTSkipUnless(Gemm.BF16Kernel.avx512Available, "this CPU has no AVX-512 BF16")
        for (index, s) in Self.shapes.enumerated() {
            let p = Problem(s.m, s.n, s.k, beta: 0.5, seed: UInt64(index + 200), padding: 1)
            let matrix = p.matrix()
            let avx = p.run(.avx512, matrix: matrix)
            let portable = p.run(.portable, matrix: matrix)
            // The portable result is the reference; S still comes from the float64 sums.
            let magnitudes = p.reference(a: Self.rounded(p.a), w: Self.rounded(p.w))
            var reference: [(value: Double, magnitude: Double)] = []
            for i in 0..<p.m {
                for j in 0..<p.n {
                    reference.append((Double(portable[i * p.ldc + j]), magnitudes[i * p.n + j].magnitude))
                }
            }
            check(avx, p, reference, relative: 2 * Double(s.k + 2) * Self.u, "avx512 vs portable \(s)")
        }
    }

    func testThreadCountDoesNotChangeBits() {
        // Row split (m ≥ 192 per thread), panel split (few rows), and the inline path.
        for (m, n, k) in [(400, 64, 65), (5, 577, 576), (300, 96, 31), (2, 3, 4)] {
            let p = Problem(m, n, k, beta: 1, seed: UInt64(m + n + k))
            let matrix = p.matrix()
            for kernel in kernels() {
                let serial = p.run(kernel, matrix: matrix, serial: true)
                let one = withThreads(1) { p.run(kernel, matrix: matrix) }
                let two = withThreads(2) { p.run(kernel, matrix: matrix) }
                XCTAssertEqual(one.map(\.bitPattern), serial.map(\.bitPattern), "\(kernel) \(m)×\(n)×\(k): 1 thread")
                XCTAssertEqual(two.map(\.bitPattern), serial.map(\.bitPattern), "\(kernel) \(m)×\(n)×\(k): 2 threads")
            }
        }
    }

    func testColumnRangesGiveTheSameBitsAsTheWholeProduct() {
        let p = Problem(37, 200, 70, beta: 1, seed: 9, padding: 2)
        let matrix = p.matrix()
        for kernel in kernels() {
            let whole = p.run(kernel, matrix: matrix, serial: true)
            var pieces = p.c0
            p.a.withUnsafeBufferPointer { a in
                pieces.withUnsafeMutableBufferPointer { c in
                    for columns in [0..<64, 64..<96, 96..<200] {
                        Gemm.multiplySerial(m: p.m, a: a.baseAddress!, lda: p.lda, weights: matrix, columns: columns,
                                            c: c.baseAddress!, ldc: p.ldc, beta: p.beta, kernel: kernel)
                    }
                }
            }
            XCTAssertEqual(pieces.map(\.bitPattern), whole.map(\.bitPattern), "\(kernel): column blocks differ from the whole product")
        }
    }

    func testZeroBetaDoesNotReadC() {
        let p = Problem(13, 40, 9, beta: 0, seed: 5)
        let matrix = p.matrix()
        for kernel in kernels() {
            var c = [Float](repeating: .nan, count: p.m * p.ldc)
            p.a.withUnsafeBufferPointer { a in
                c.withUnsafeMutableBufferPointer { c in
                    Gemm.multiply(m: p.m, a: a.baseAddress!, lda: p.lda, weights: matrix, c: c.baseAddress!, ldc: p.ldc,
                                  beta: 0, kernel: kernel)
                }
            }
            XCTAssertTrue(c.allSatisfy(\.isFinite), "\(kernel): NaN in C leaked into a beta = 0 product")
        }
    }
}
