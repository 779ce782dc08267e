import CKernels
import Foundation
import XCTest

/// The fp32 vector kernels (CSupport/CKernels/kernels.c) against float64 references, on odd sizes so
/// every vector body and scalar tail runs, in place and out of place where the model uses both.
/// Tolerances are relative to the size of what is summed or multiplied, a few fp32 ulps per term.
final class VectorKernelTests: XCTestCase {
    static let sizes = [1, 7, 15, 16, 17, 63, 65, 127, 577]

    func assertClose(_ got: Float, _ want: Double, tolerance: Double, _ label: @autoclosure () -> String,
                     file: StaticString = #filePath, line: UInt = #line) {
        let error = abs(Double(got) - want)
        if !(error <= tolerance) {
            XCTFail("\(label()): got \(got), want \(want) (error \(error) > \(tolerance))", file: file, line: line)
        }
    }

    func testRMSNorm() {
        var random = SeededRandom(seed: 11)
        for dim in Self.sizes {
            for rows in [1, 3] {
                let x = random.floats(rows * dim, -3, 3)
                let w = random.floats(dim, 0.5, 1.5)
                let eps: Float = 1e-5
                var y = [Float](repeating: 0, count: rows * dim)
                var rstd = [Float](repeating: 0, count: rows)
                srppo_rmsnorm_forward(&y, &rstd, x, w, Int32(rows), Int32(dim), eps)
                var inPlace = x
                inPlace.withUnsafeMutableBufferPointer { p in
                    srppo_rmsnorm_forward(p.baseAddress!, nil, p.baseAddress!, w, Int32(rows), Int32(dim), eps)
                }
                for r in 0..<rows {
                    let row = x[r * dim..<(r + 1) * dim].map(Double.init)
                    let s = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(dim) + Double(eps)).squareRoot()
                    assertClose(rstd[r], s, tolerance: 4e-7 * s, "rstd row \(r) of \(rows)×\(dim)")
                    for i in 0..<dim {
                        let want = row[i] * s * Double(w[i])
                        assertClose(y[r * dim + i], want, tolerance: 1e-6 * abs(want) + 1e-30, "y[\(r), \(i)] of \(rows)×\(dim)")
                        XCTAssertEqual(inPlace[r * dim + i], y[r * dim + i], "in place differs at [\(r), \(i)] of \(rows)×\(dim)")
                    }
                }
            }
        }
    }

    func testRoPE() {
        var random = SeededRandom(seed: 12)
        for (heads, headDim) in [(1, 2), (3, 8), (9, 64), (2, 66)] {
            let rows = 7, stride = heads * headDim + 5, half = headDim / 2, maxPositions = 40
            var x = random.floats(rows * stride, -2, 2)
            let original = x
            let positions = (0..<rows).map { _ in Int32(random.int(0..<maxPositions)) }
            var cosTable = [Float](), sinTable = [Float]()
            for p in 0..<maxPositions {
                for i in 0..<half {
                    let angle = Double(p) * pow(10000, -Double(2 * i) / Double(headDim))
                    cosTable.append(Float(cos(angle)))
                    sinTable.append(Float(sin(angle)))
                }
            }
            srppo_rope_forward(&x, Int32(rows), Int32(stride), Int32(heads), Int32(headDim), positions, cosTable, sinTable)
            for r in 0..<rows {
                let p = Int(positions[r])
                for h in 0..<heads {
                    let base = r * stride + h * headDim
                    for i in 0..<half {
                        let c = Double(cosTable[p * half + i]), s = Double(sinTable[p * half + i])
                        let x1 = Double(original[base + i]), x2 = Double(original[base + half + i])
                        let tolerance = 2e-7 * (abs(x1) + abs(x2))
                        assertClose(x[base + i], x1 * c - x2 * s, tolerance: tolerance, "row \(r) head \(h) pair \(i) (first)")
                        assertClose(x[base + half + i], x2 * c + x1 * s, tolerance: tolerance, "row \(r) head \(h) pair \(i) (second)")
                    }
                }
                // Floats past the heads (row padding) are untouched.
                for j in heads * headDim..<stride {
                    XCTAssertEqual(x[r * stride + j], original[r * stride + j], "padding of row \(r) changed")
                }
            }
        }
    }

    func testSwiGLU() {
        var random = SeededRandom(seed: 13)
        for n in Self.sizes + [1000] {
            var gate = random.floats(n, -30, 30)
            gate[0] = n > 1 ? -100 : 100 // far tails: exp clamps without overflow or NaN
            let up = random.floats(n, -2, 2)
            var out = [Float](repeating: 0, count: n)
            srppo_swiglu_forward(&out, gate, up, n)
            var inPlace = gate
            inPlace.withUnsafeMutableBufferPointer { srppo_swiglu_forward($0.baseAddress!, $0.baseAddress!, up, n) }
            for i in 0..<n {
                let g = Double(gate[i])
                let want = g / (1 + exp(-g)) * Double(up[i])
                assertClose(out[i], want, tolerance: 2e-6 * abs(want) + 1e-30, "swiglu[\(i)] of \(n), gate \(g)")
                XCTAssertEqual(inPlace[i], out[i], "in place differs at \(i) of \(n)")
            }
        }
    }

    func testCausalSoftmax() {
        var random = SeededRandom(seed: 14)
        for (rows, cols, diag) in [(1, 1, 0), (7, 7, 0), (5, 12, 7), (17, 17, 0), (63, 70, 7), (65, 65, 0), (3, 577, 574)] {
            let ld = cols + 3, scale: Float = 0.125
            var s = random.floats(rows * ld, -40, 40)
            let original = s
            srppo_softmax_causal(&s, Int32(rows), Int32(cols), Int32(ld), Int32(diag), scale)
            for r in 0..<rows {
                let valid = min(cols, r + diag + 1)
                let logits = (0..<valid).map { Double(original[r * ld + $0]) * Double(scale) }
                let m = logits.max()!
                let sum = logits.reduce(0) { $0 + exp($1 - m) }
                for j in 0..<cols {
                    let want = j < valid ? exp(logits[j] - m) / sum : 0
                    assertClose(s[r * ld + j], want, tolerance: 4e-6 * want + 1e-9, "p[\(r), \(j)] of \(rows)×\(cols) diag \(diag)")
                }
                for j in cols..<ld {
                    XCTAssertEqual(s[r * ld + j], original[r * ld + j], "row stride padding changed at [\(r), \(j)]")
                }
            }
        }
    }

    func testLogSumExp() {
        var random = SeededRandom(seed: 15)
        for cols in Self.sizes + [49152] {
            let rows = 3, ld = cols + 1
            var x = random.floats(rows * ld, -20, 20)
            x[ld + cols / 2] = 80 // a dominant entry in the middle row
            var out = [Float](repeating: 0, count: rows)
            srppo_logsumexp_rows(&out, x, Int32(rows), Int32(cols), Int32(ld))
            for r in 0..<rows {
                let row = (0..<cols).map { Double(x[r * ld + $0]) }
                let m = row.max()!
                let want = m + log(row.reduce(0) { $0 + exp($1 - m) })
                assertClose(out[r], want, tolerance: 2e-6 * abs(want) + 2e-6, "logsumexp row \(r) of \(cols)")
            }
        }
    }

    func testAddInPlace() {
        var random = SeededRandom(seed: 16)
        for n in Self.sizes {
            var y = random.floats(n)
            let x = random.floats(n)
            let before = y
            srppo_add_inplace(&y, x, n)
            for i in 0..<n { XCTAssertEqual(y[i], before[i] + x[i], "y[\(i)] of \(n)") }
        }
    }
}

extension VectorKernelTests {
    func testLogSumExpAccumulatedOverBlocksMatchesWholeRows() {
        var random = SeededRandom(seed: 17)
        for (cols, block) in [(1, 1), (65, 16), (577, 100), (49152, 4096)] {
            let rows = 3
            var x = random.floats(rows * cols, -20, 20)
            x[cols + cols / 3] = 60 // row 1: a dominant entry in a middle block
            var whole = [Float](repeating: 0, count: rows)
            srppo_logsumexp_rows(&whole, x, Int32(rows), Int32(cols), Int32(cols))
            var runningMax = [Float](repeating: -.infinity, count: rows)
            var runningSum = [Float](repeating: 0, count: rows)
            var start = 0
            while start < cols {
                let width = min(block, cols - start)
                x.withUnsafeBufferPointer { p in
                    srppo_logsumexp_accumulate(&runningMax, &runningSum, p.baseAddress! + start, Int32(rows), Int32(width), Int32(cols))
                }
                start += width
            }
            for r in 0..<rows {
                let row = (0..<cols).map { Double(x[r * cols + $0]) }
                let m = row.max()!
                let want = m + log(row.reduce(0) { $0 + exp($1 - m) })
                let got = Double(runningMax[r]) + log(Double(runningSum[r]))
                XCTAssertEqual(got, want, accuracy: 2e-6 * abs(want) + 2e-6, "blocks of \(block) over \(cols), row \(r)")
                XCTAssertEqual(got, Double(whole[r]), accuracy: 4e-6 * abs(want) + 4e-6, "blocks vs whole row \(r)")
            }
        }
    }
}
