import Report
import XCTest

final class ReportTests: XCTestCase {
    func testTicksAreRoundAndInsideTheRange() {
        XCTAssertEqual(LineChart.ticksForTesting(0...1), [0, 0.2, 0.4, 0.6, 0.8, 1])
        XCTAssertEqual(LineChart.ticksForTesting(3...97), [20, 40, 60, 80])
        XCTAssertEqual(LineChart.ticksForTesting(-2.5...2.5), [-2, -1, 0, 1, 2])
    }

    func testChartHasOnePolylinePerSeriesWithItsPoints() {
        let chart = LineChart(title: "Reward <EOS>", xLabel: "step", yLabel: "reward", series: [
            .init(name: "eos", points: [(0, 1), (1, 2), (2, 4)]),
            .init(name: "token & wise", points: [(0, 0), (1, .nan), (2, 1)]),
        ])
        let svg = chart.svg()
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertTrue(svg.contains("Reward &lt;EOS&gt;"))
        XCTAssertTrue(svg.contains("data-series=\"token &amp; wise\""))
        // The NaN point is dropped: the second series has two points.
        let second = svg.components(separatedBy: "data-series=\"token &amp; wise\"")[1]
        let points = second.components(separatedBy: "points=\"")[1].components(separatedBy: "\"")[0]
        XCTAssertEqual(points.split(separator: " ").count, 2)
    }

    func testEmptyChartSaysSo() {
        XCTAssertTrue(LineChart(title: "x", xLabel: "", yLabel: "", series: []).svg().contains("no data"))
    }

    func testPageEscapesEverything() {
        let page = ReportPage(title: "Run <1>", subtitle: "a & b", sections: [
            .init(title: "Eval", blocks: [.table(header: ["model", "acc"], rows: [["<script>", "1.0"]]), .code("x < y")]),
        ])
        let html = page.html()
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertTrue(html.contains("&lt;script&gt;"))
        XCTAssertTrue(html.contains("<title>Run &lt;1&gt;</title>"))
        XCTAssertTrue(html.contains("<pre>x &lt; y</pre>"))
    }
}
