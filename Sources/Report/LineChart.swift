import Foundation

/// A line chart rendered as a standalone SVG element: axes with rounded ticks, one polyline per
/// series, a legend. No scripts, no external files, so a report stays one self-contained page.
public struct LineChart {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]

        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points.filter { $0.x.isFinite && $0.y.isFinite }
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 560.0
    public var height = 300.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    public func svg() -> String {
        let left = 64.0, right = 16.0, top = 34.0, bottom = 46.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let all = series.flatMap(\.points)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
        out += "<text x=\"\(Int(width / 2))\" y=\"20\" text-anchor=\"middle\" class=\"title\">\(escape(title))</text>"
        guard let xr = Self.range(all.map(\.x)), let yr = Self.range(all.map(\.y)) else {
            return out + "<text x=\"\(Int(width / 2))\" y=\"\(Int(height / 2))\" text-anchor=\"middle\" class=\"empty\">no data</text></svg>"
        }
        func px(_ x: Double) -> Double { left + (x - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * plotHeight }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" class=\"frame\"/>"
        for t in Self.ticks(yr) {
            out += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(f(py(t)))\" y2=\"\(f(py(t)))\" class=\"grid\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\" class=\"tick\">\(Self.label(t))</text>"
        }
        for t in Self.ticks(xr) {
            out += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotHeight + 16))\" text-anchor=\"middle\" class=\"tick\">\(Self.label(t))</text>"
        }
        out += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\" class=\"axis\">\(escape(xLabel))</text>"
        out += "<text transform=\"translate(14 \(f(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\" class=\"axis\">\(escape(yLabel))</text>"
        // Legend box wide enough for the longest name (10 px font: about 5.6 px per character).
        let legendWidth = min(Double(series.map(\.name.count).max() ?? 0) * 5.6 + 26, plotWidth * 0.7)
        for (i, s) in series.enumerated() where !s.points.isEmpty {
            let color = Self.palette[i % Self.palette.count]
            let path = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline class=\"series\" data-series=\"\(escape(s.name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\" points=\"\(path)\"/>"
            if s.points.count == 1 {
                out += "<circle cx=\"\(f(px(s.points[0].x)))\" cy=\"\(f(py(s.points[0].y)))\" r=\"3\" fill=\"\(color)\"/>"
            }
            let ly = top + 14 + Double(i) * 14
            out += "<line x1=\"\(f(left + plotWidth - legendWidth))\" x2=\"\(f(left + plotWidth - legendWidth + 16))\" y1=\"\(f(ly - 4))\" y2=\"\(f(ly - 4))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            out += "<text x=\"\(f(left + plotWidth - legendWidth + 20))\" y=\"\(f(ly))\" class=\"legend\">\(escape(s.name))</text>"
        }
        return out + "</svg>"
    }

    /// The data range, widened when flat so the line sits in the middle.
    static func range(_ values: [Double]) -> ClosedRange<Double>? {
        guard let lo = values.min(), let hi = values.max() else { return nil }
        if lo == hi { return (lo - max(abs(lo) * 0.1, 1))...(hi + max(abs(hi) * 0.1, 1)) }
        let pad = (hi - lo) * 0.05
        return (lo - pad)...(hi + pad)
    }

    /// About five round tick values (1, 2 or 5 × 10^k apart) inside the range.
    public static func ticksForTesting(_ r: ClosedRange<Double>) -> [Double] { ticks(r) }

    static func ticks(_ r: ClosedRange<Double>) -> [Double] {
        let raw = (r.upperBound - r.lowerBound) / 5
        let magnitude = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        let first = Int(Foundation.ceil(r.lowerBound / step - 1e-9)), last = Int(Foundation.floor(r.upperBound / step + 1e-9))
        // Through a short decimal so 3 × 0.2 prints and compares as 0.6.
        return (first...max(first, last)).map { Double(String(format: "%.12g", Double($0) * step))! }
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e4 || abs(v) < 1e-3 { return String(format: "%.1e", v) }
        return String(format: "%g", (v * 1e4).rounded() / 1e4)
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
}

/// HTML/XML escaping of text content and attribute values.
public func escape(_ text: String) -> String {
    var out = ""
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
