import Evaluation
import Foundation
import Workflow

/// What a run folder holds, read for the report.
public struct RunReport {
    public enum Kind: String { case sft, ppo, other }

    public struct Stage {
        public var name: String
        public var kind: Kind
        public var metrics: [[String: Any]]
        public var config: String?

        func series(_ key: String, name: String? = nil) -> LineChart.Series {
            let points = metrics.compactMap { record -> (x: Double, y: Double)? in
                guard let step = RunReport.number(record["step"]), let value = RunReport.number(record[key]) else { return nil }
                return (step, value)
            }
            return LineChart.Series(name: name ?? key, points: points)
        }
    }

    public let folder: String
    public var stages: [Stage] = []
    public var evaluations: [(label: String, results: EvaluationResults)] = []
    var pipelineConfig: String?

    /// Reads `folder`: a pipeline folder, or one SFT or PPO run folder.
    public init(folder: String) {
        self.folder = folder
        let fm = FileManager.default
        var candidates = [(name: (folder as NSString).lastPathComponent, path: folder)]
        let children = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        candidates += children.map { ($0, (folder as NSString).appendingPathComponent($0)) }
        for (name, path) in candidates {
            let metricsPath = (path as NSString).appendingPathComponent("metrics.jsonl")
            guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { continue }
            let records = text.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
            let configPath = (path as NSString).appendingPathComponent("run-config.json")
            let configData = fm.contents(atPath: configPath)
            let command = configData.flatMap { (try? JSONSerialization.jsonObject(with: $0)) as? [String: Any] }?["command"] as? String
            var kind = Kind(rawValue: command ?? "") ?? .other
            if kind == .other {
                if records.contains(where: { $0["reward"] != nil }) { kind = .ppo } else if records.contains(where: { $0["loss"] != nil }) { kind = .sft }
            }
            stages.append(Stage(name: name, kind: kind, metrics: records, config: configData.map { String(decoding: $0, as: UTF8.self) }))
        }
        var evalFiles: [(String, String)] = []
        let evalFolder = (folder as NSString).appendingPathComponent("eval")
        for file in ((try? fm.contentsOfDirectory(atPath: evalFolder)) ?? []).sorted() where file.hasSuffix(".json") {
            evalFiles.append((String(file.dropLast(5)), (evalFolder as NSString).appendingPathComponent(file)))
        }
        evalFiles.append(("eval", (folder as NSString).appendingPathComponent("eval.json")))
        for (label, path) in evalFiles {
            guard let data = fm.contents(atPath: path), let results = try? JSONDecoder().decode(EvaluationResults.self, from: data) else { continue }
            evaluations.append((label, results))
        }
        pipelineConfig = fm.contents(atPath: (folder as NSString).appendingPathComponent("pipeline.json")).map { String(decoding: $0, as: UTF8.self) }
    }

    static func number(_ value: Any?) -> Double? {
        (value as? NSNumber)?.doubleValue
    }

    /// The report page (`html()` renders it).
    public func page() -> ReportPage {
        var sections: [ReportPage.Section] = []
        let sft = stages.filter { $0.kind == .sft }, ppo = stages.filter { $0.kind == .ppo }
        if !evaluations.isEmpty { sections.append(evaluationSection()) }
        sections += experimentSections()
        if !sft.isEmpty {
            var charts: [LineChart] = []
            for stage in sft {
                let prefix = sft.count > 1 ? stage.name + " " : ""
                charts.append(LineChart(title: "SFT loss" + (sft.count > 1 ? " (\(stage.name))" : ""), xLabel: "step",
                                        yLabel: "NLL per response token",
                                        series: [stage.series("loss", name: prefix + "train"), stage.series("eval_loss", name: prefix + "held out")]))
            }
            sections.append(.init(title: "Stage 1: SFT", blocks: [
                .paragraph("Next-token loss on response tokens: training batches and held-out demonstrations."), .charts(charts)]))
        }
        if !ppo.isEmpty {
            func chart(_ title: String, _ y: String, _ keys: [(String, String)]) -> LineChart {
                var series: [LineChart.Series] = []
                for stage in ppo {
                    for (key, label) in keys {
                        let name = [ppo.count > 1 ? stage.name : nil, keys.count > 1 ? label : nil].compactMap { $0 }.joined(separator: " ")
                        series.append(stage.series(key, name: name.isEmpty ? label : name))
                    }
                }
                return LineChart(title: title, xLabel: "PPO step", yLabel: y, series: series)
            }
            let charts = [
                chart("Coherent reward", "log p_SFT − log p_PT (sum)", [("reward", "reward")]),
                chart("KL to SFT", "nats per response", [("kl_sft", "KL to SFT")]),
                chart("KL to PT", "nats per response", [("kl_pt", "KL to PT")]),
                chart("Response length", "tokens", [("response_length", "length")]),
                chart("EOS and truncation rates", "share of responses", [("eos_rate", "EOS"), ("truncation_rate", "truncated")]),
                chart("Value loss", "clipped value loss", [("value_loss", "value loss")]),
                chart("Explained variance", "1 − Var(R − V)/Var(R)", [("explained_variance", "explained variance")]),
            ]
            sections.append(.init(title: "Stage 2: PPO with the coherent reward", blocks: [
                .paragraph("Per step, over the step's sampled responses. The reward is the EOS-placed sum of log p_SFT − log p_PT; "
                           + "KL is the sum over response tokens of log π − log π_ref."), .charts(charts)]))
        }
        if let timing = stageTimes() { sections.append(timing) }
        var settings: [ReportPage.Block] = []
        if let pipelineConfig { settings.append(.paragraph("pipeline.json")); settings.append(.code(pipelineConfig)) }
        for stage in stages { if let config = stage.config { settings.append(.paragraph("\(stage.name)/run-config.json")); settings.append(.code(config)) } }
        if !settings.isEmpty { sections.append(.init(title: "Settings", blocks: settings)) }
        let name = (folder as NSString).lastPathComponent
        let formatter = ISO8601DateFormatter()
        return ReportPage(title: "SRPPO run: \(name)",
                          subtitle: "\(stages.count) training runs, \(evaluations.count) evaluations; written \(formatter.string(from: Date()))",
                          sections: sections)
    }

    private func evaluationSection() -> ReportPage.Section {
        var blocks: [ReportPage.Block] = [.paragraph("Accuracy as IFEval reports it (prompt and instruction level, strict and loose); "
                                                     + "GSM8K-format sets: exact match of the final number.")]
        let header = ["model", "set", "rows", "prompt strict", "prompt loose", "instr strict", "instr loose", "accuracy",
                      "mean words", "mean tokens", "truncated"]
        var rows: [[String]] = []
        for (label, results) in evaluations {
            for set in results.sets {
                let g = set.generation
                var row = [label, set.name, "\(set.rows)"]
                if let i = set.ifeval {
                    row += [pct(i.promptLevel.strictAccuracy), pct(i.promptLevel.looseAccuracy),
                            pct(i.instructionLevel.strictAccuracy), pct(i.instructionLevel.looseAccuracy), ""]
                } else {
                    row += ["", "", "", "", set.gsm8k.map { pct($0.accuracy) } ?? ""]
                }
                row += [String(format: "%.1f", set.meanResponseWords), g.map { String(format: "%.1f", $0.meanTokens) } ?? "",
                        g.map { pct($0.truncationRate) } ?? ""]
                rows.append(row)
            }
        }
        blocks.append(.table(header: header, rows: rows))
        let nllRows = evaluations.flatMap { label, results in
            (results.nll ?? []).map { [label, $0.name, "\($0.examples)", "\($0.tokens)", String(format: "%.4f", $0.meanNLL)] }
        }
        if !nllRows.isEmpty {
            blocks.append(.paragraph("Held-out negative log-likelihood of demonstrations (per response token)."))
            blocks.append(.table(header: ["model", "demonstrations", "examples", "tokens", "mean NLL"], rows: nllRows))
        }
        let summary = seedSummary()
        if !summary.isEmpty {
            blocks.append(.paragraph("Per model, evaluations named LABEL-seedN taken together: mean ± standard deviation over seeds " +
                                     "(sample sd; one evaluation: its value). Truncated: responses cut at the token limit. " +
                                     "NLL: held-out demonstrations, per token."))
            blocks.append(.table(header: ["model", "set", "seeds", "prompt strict", "prompt loose", "instr strict", "instr loose",
                                          "mean words", "mean tokens", "truncated", "held-out NLL"], rows: summary))
        }
        return .init(title: "Evaluation", blocks: blocks)
    }

    /// Rows of mean ± sd per (label without -seedN, IFEval set), in evaluation order: the results
    /// table of a pipeline run.
    func seedSummary() -> [[String]] {
        var groups: [String: [EvaluationResults]] = [:]
        var order: [String] = []
        for (label, results) in evaluations {
            let base = label.range(of: "-seed[0-9]+$", options: .regularExpression).map { String(label[..<$0.lowerBound]) } ?? label
            if groups[base] == nil { order.append(base) }
            groups[base, default: []].append(results)
        }
        var rows: [[String]] = []
        for base in order {
            let runs = groups[base]!
            let setNames = runs[0].sets.filter { $0.ifeval != nil }.map(\.name)
            for name in setNames {
                let sets = runs.compactMap { $0.sets.first { $0.name == name } }.filter { $0.ifeval != nil }
                func stat(_ xs: [Double], _ format: String) -> String {
                    guard !xs.isEmpty else { return "—" }
                    let n = Double(xs.count), mean = xs.reduce(0, +) / n
                    guard xs.count > 1 else { return String(format: format, mean) }
                    let sd = (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot()
                    return String(format: format, mean) + " ± " + String(format: format, sd)
                }
                func percent(_ f: (SetResult) -> Double?) -> String {
                    let xs = sets.compactMap(f).map { 100 * $0 }
                    return xs.isEmpty ? "—" : stat(xs, "%.1f") + "%"
                }
                rows.append([base, name, "\(sets.count)",
                             percent { $0.ifeval!.promptLevel.strictAccuracy }, percent { $0.ifeval!.promptLevel.looseAccuracy },
                             percent { $0.ifeval!.instructionLevel.strictAccuracy }, percent { $0.ifeval!.instructionLevel.looseAccuracy },
                             stat(sets.map(\.meanResponseWords), "%.1f"), stat(sets.compactMap { $0.generation?.meanTokens }, "%.1f"),
                             percent { $0.generation?.truncationRate },
                             stat(runs.compactMap { $0.nll?.first?.meanNLL }, "%.3f")])
            }
        }
        return rows
    }

    /// The pipeline's stages.jsonl: seconds per stage.
    private func stageTimes() -> ReportPage.Section? {
        let file = (folder as NSString).appendingPathComponent("stages.jsonl")
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        let records = text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        guard !records.isEmpty else { return nil }
        let rows = records.map { r in
            [r["stage"] as? String ?? "?", String(format: "%.1f", RunReport.number(r["seconds"]) ?? 0), "\(RunReport.number(r["exit"]).map { Int($0) } ?? -1)",
             r["command"] as? String ?? ""]
        }
        return .init(title: "Stages", blocks: [.table(header: ["stage", "seconds", "exit", "command"], rows: rows)])
    }

    private func pct(_ x: Double) -> String { String(format: "%.1f%%", 100 * x) }
}
