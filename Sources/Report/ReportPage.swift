/// A self-contained HTML report: sections of prose, charts (inline SVG) and tables, styled inline.
public struct ReportPage {
    public enum Block {
        case paragraph(String)
        case charts([LineChart])
        case table(header: [String], rows: [[String]])
        /// Preformatted text (commands, configs).
        case code(String)
    }

    public struct Section {
        public var title: String
        public var blocks: [Block]

        public init(title: String, blocks: [Block]) {
            self.title = title
            self.blocks = blocks
        }
    }

    public var title: String
    public var subtitle: String
    public var sections: [Section]

    public init(title: String, subtitle: String, sections: [Section]) {
        self.title = title
        self.subtitle = subtitle
        self.sections = sections
    }

    static let style = """
    body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1180px;color:#222;padding:0 1rem}
    h1{margin-bottom:.2rem}p.subtitle{color:#666;margin-top:0}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2rem}
    .charts{display:flex;flex-wrap:wrap;gap:12px}svg.chart{background:#fff;border:1px solid #e3e3e3;border-radius:4px}
    svg .title{font-size:13px;font-weight:600}svg .tick{font-size:10px;fill:#555}svg .axis{font-size:11px;fill:#333}
    svg .legend{font-size:10px;fill:#333}svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#ccc}svg .empty{fill:#999;font-size:12px}
    table{border-collapse:collapse;font-size:14px;margin:.5rem 0}th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}
    th:first-child,td:first-child{text-align:left}th{background:#f5f5f5}pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:12px}
    """

    public func html() -> String {
        var out = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(escape(title))</title><style>\(Self.style)</style></head><body>"
        out += "<h1>\(escape(title))</h1><p class=\"subtitle\">\(escape(subtitle))</p>"
        for section in sections {
            out += "<section><h2>\(escape(section.title))</h2>"
            for block in section.blocks {
                switch block {
                case let .paragraph(text):
                    out += "<p>\(escape(text))</p>"
                case let .charts(charts):
                    out += "<div class=\"charts\">" + charts.map { $0.svg() }.joined() + "</div>"
                case let .table(header, rows):
                    out += "<table><thead><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>"
                    for row in rows { out += "<tr>" + row.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }
                    out += "</tbody></table>"
                case let .code(text):
                    out += "<pre>\(escape(text))</pre>"
                }
            }
            out += "</section>"
        }
        return out + "</body></html>\n"
    }
}
