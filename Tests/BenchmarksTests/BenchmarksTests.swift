import Benchmarks
import Compute
import XCTest

/// The benchmark harness's own arithmetic and parsing: a wrong median or a GEMM that multiplies the
/// wrong operands would make every number `srppo bench` prints wrong without failing.
final class BenchmarksTests: XCTestCase {
    private func assertRefused(_ body: @autoclosure () throws -> Any, _ message: String, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { XCTAssertEqual("\($0)", message, line: line) }
    }

    func testTheMedianOfAnOddCountIsTheMiddleAndOfAnEvenCountTheMeanOfTheTwoMiddles() {
        XCTAssertEqual(Bench.median([5, 1, 3]), 3)
        XCTAssertEqual(Bench.median([4, 1, 3, 10]), 3.5)
        XCTAssertEqual(Bench.median([2]), 2)
    }

    func testRoundingKeepsTheGivenDecimals() {
        XCTAssertEqual(Bench.round(12.345), 12.3)
        XCTAssertEqual(Bench.round(0.123456, 3), 0.123)
    }

    func testThreadListsArePositiveIntegersAndAnythingElseIsRefusedNamingTheFlag() throws {
        XCTAssertEqual(try Bench.threadList("1, 2,4"), [1, 2, 4])
        for text in ["", "0", "1,x", "2,-1"] {
            assertRefused(try Bench.threadList(text),
                          "--threads must be a comma-separated list of positive integers, got \"\(text)\"")
        }
    }

    func testShapesAndBatchesParseAndTheirMistakesAreNamed() throws {
        XCTAssertEqual(try WeightShape.parseList("576x576,49152x576"), [WeightShape(n: 576, k: 576), WeightShape(n: 49152, k: 576)])
        assertRefused(try WeightShape.parseList("576x576,576"), "a shape must look like 576x576 (N x K), got \"576\"")
        XCTAssertEqual(try ScoreBenchmark.batchShapes("8x256,1x2", prefix: nil, scored: nil),
                       [.init(sequences: 8, tokens: 256), .init(sequences: 1, tokens: 2)])
        assertRefused(try ScoreBenchmark.batchShapes("8x1", prefix: nil, scored: nil),
                      "a batch must look like 8x256 (sequences x tokens, tokens ≥ 2), got \"8x1\"")
        assertRefused(try ScoreBenchmark.batchShapes("4x64", prefix: 64, scored: nil),
                      "--prefix 64 must be in 1..<64 for batch 4x64")
        assertRefused(try ScoreBenchmark.precisions("f32,fp16"), "--dtype must list f32 and/or bf16, got \"fp16\"")
        assertRefused(try TrainBenchmark.modes("full,qlora"), "--modes must list full and/or lora, got \"full,qlora\"")
        assertRefused(try GemmBenchmark.kernel(named: "sse"), "--kernel must be automatic, avx512 or portable, got \"sse\"")
    }

    /// The fp32 and bf16 products against a float64 product of the same operands: bf16 rounds both
    /// operands to 8 significant bits, so it is held to a looser bound than fp32.
    func testBothGemmsComputeXTimesWTransposed() {
        let (m, n, k) = (5, 7, 64)
        let problem = GemmProblem(m: m, n: n, k: k, seed: 3)
        var expected = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                for p in 0..<k { expected[i * n + j] += Double(problem.a.pointer[i * k + p]) * Double(problem.w.pointer[j * k + p]) }
            }
        }
        func worstError() -> Double {
            (0..<m * n).map { abs(Double(problem.c.pointer[$0]) - expected[$0]) }.max()!
        }
        let scale = expected.map(abs).max()!
        XCTAssertGreaterThan(scale, 1, "random operands in (-1, 1) over k = 64 should not cancel out")
        problem.runFP32()
        XCTAssertLessThan(worstError(), 1e-4 * scale)
        problem.c.pointer.update(repeating: 0, count: m * n)
        problem.runBF16(kernel: .portable)
        XCTAssertLessThan(worstError(), 2e-2 * scale)
        XCTAssertGreaterThan(worstError(), 0, "bf16 rounding leaves some error: the bf16 kernel really ran")
        XCTAssertEqual(problem.flops, Double(2 * m * n * k))
    }
}
