import Evaluation
import Foundation
import Workflow

/// The report sections of the paper's first checks, from what the pipeline's stages left: the paired
/// comparison (comparison.json), reward sanity (reward_sanity.json), response length per placement
/// over PPO steps, and data scarcity (SFT and SRPPO evaluated at several demonstration counts).
extension RunReport {
    func experimentSections() -> [ReportPage.Section] {
        [comparisonSection(), lengthSection(), rewardSanitySection(), scarcitySection()].compactMap { $0 }
    }

    private func file(_ name: String) -> Data? {
        FileManager.default.contents(atPath: (folder as NSString).appendingPathComponent(name))
    }

    private func comparisonSection() -> ReportPage.Section? {
        guard let data = file("comparison.json"), let comparisons = try? JSONDecoder().decode([RunComparison.Comparison].self, from: data),
              !comparisons.isEmpty else { return nil }
        let (header, rows) = RunComparison.rows(comparisons)
        return .init(title: "Does SRPPO beat SFT? (paired, per task)", blocks: [
            .paragraph("SRPPO − the SFT model it started from, in accuracy points, task by task: the mean difference with a 95% "
                       + "percentile bootstrap interval over tasks (10 000 resamples), per seed and pooled over seeds (each task's "
                       + "difference averaged over the seeds). Verdict: beats (interval above 0), worse (below 0), no difference. "
                       + "srppo compare wrote comparison.json."),
            .table(header: header, rows: rows),
        ])
    }

    /// Mean response length over the seeds of each placement, per PPO step.
    private func lengthSection() -> ReportPage.Section? {
        var byPlacement: [String: [Stage]] = [:]
        for stage in stages where stage.kind == .ppo {
            guard let match = stage.name.range(of: "^ppo-(.+)-seed[0-9]+$", options: .regularExpression) else { continue }
            let placement = String(stage.name[match].dropFirst(4).split(separator: "-").dropLast().joined(separator: "-"))
            byPlacement[placement, default: []].append(stage)
        }
        guard !byPlacement.isEmpty else { return nil }
        func meanSeries(_ key: String, _ placement: String) -> LineChart.Series {
            var sums: [Double: (Double, Int)] = [:]
            for stage in byPlacement[placement]! {
                for point in stage.series(key).points { sums[point.x, default: (0, 0)].0 += point.y; sums[point.x, default: (0, 0)].1 += 1 }
            }
            return .init(name: placement, points: sums.keys.sorted().map { ($0, sums[$0]!.0 / Double(sums[$0]!.1)) })
        }
        let placements = byPlacement.keys.sorted()
        return .init(title: "Length: does a placement make responses explode?", blocks: [
            .paragraph("Mean over seeds, per PPO step, of the sampled responses' length and truncation rate (responses stop at the "
                       + "end token or at the PPO run's max new tokens)."),
            .charts([LineChart(title: "Response length by placement", xLabel: "PPO step", yLabel: "tokens",
                               series: placements.map { meanSeries("response_length", $0) }),
                     LineChart(title: "Truncation rate by placement", xLabel: "PPO step", yLabel: "share of responses",
                               series: placements.map { meanSeries("truncation_rate", $0) })]),
        ])
    }

    private func rewardSanitySection() -> ReportPage.Section? {
        guard let data = file("reward_sanity.json"), let results = try? JSONDecoder().decode(RewardSanity.Results.self, from: data)
        else { return nil }
        let separations = results.separations.map { ["\($0.higher.rawValue) > \($0.lower.rawValue)", String(format: "%.3f", $0.auroc)] }
        // Each kind's rewards sorted: the further apart the curves, the better the reward separates them.
        let series = RewardSanity.Kind.allCases.map { kind -> LineChart.Series in
            let rewards = results.rows.filter { $0.kind == kind }.map(\.reward).sorted()
            let n = Double(max(rewards.count - 1, 1))
            return .init(name: kind.rawValue, points: rewards.enumerated().map { (Double($0.offset) / n, $0.element) })
        }
        return .init(title: "Reward sanity: does the coherent reward tell good answers from bad?", blocks: [
            .paragraph("Held-out demonstrations (\(results.data)): the reference answer, another prompt's reference (shuffled), a PT "
                       + "sample and an SFT sample, each scored with log p_SFT − log p_PT summed over the response."),
            .table(header: RewardSanity.Results.kindHeader, rows: results.kindRows),
            .table(header: ["AUROC", "value"], rows: separations),
            .charts([LineChart(title: "Coherent reward, sorted, per kind", xLabel: "quantile", yLabel: "reward (nats)", series: series)]),
        ])
    }

    /// Out-of-domain prompt-level strict accuracy against the number of demonstrations: sft-demosN
    /// and srppo-P-demosN (the scarcity runs, all with the same number of PPO steps).
    private func scarcitySection() -> ReportPage.Section? {
        guard let text = pipelineConfig, let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
              let config = try? PipelineConfig.decode(layers: [object], source: "pipeline.json"),
              !config.scarcityDemos.isEmpty, let seed = config.seeds.first else { return nil }
        let sizes = config.scarcityDemos
        let placement = config.placements.contains("eos") ? "eos" : config.placements.first ?? "eos"
        func accuracy(_ label: String) -> Double? {
            evaluations.first { $0.label == label }?.results.sets.first?.ifeval.map { 100 * $0.promptLevel.strictAccuracy }
        }
        let counts = sizes.sorted()
        let sft = counts.map { n in (Double(n), accuracy("sft-demos\(n)")) }
        let srppo = counts.map { n in (Double(n), accuracy("srppo-\(placement)-demos\(n)")) }
        let rows = zip(sft, srppo).map { s, p in
            ["\(Int(s.0))", s.1.map { String(format: "%.1f%%", $0) } ?? "—", p.1.map { String(format: "%.1f%%", $0) } ?? "—"]
        }
        func series(_ name: String, _ points: [(Double, Double?)]) -> LineChart.Series {
            .init(name: name, points: points.compactMap { x, y in y.map { (x, $0) } })
        }
        return .init(title: "Data scarcity: SFT and SRPPO with fewer demonstrations", blocks: [
            .paragraph("Seed \(seed); SFT on the first N demonstrations, SRPPO (\(placement) placement, "
                       + "\(config.scarcitySteps) PPO steps) from it, with the same PPO prompts. "
                       + "First evaluation set, prompt-level strict accuracy."),
            .table(header: ["demonstrations", "SFT", "SRPPO"], rows: rows),
            .charts([LineChart(title: "Accuracy against demonstrations", xLabel: "demonstrations", yLabel: "prompt strict (%)",
                               series: [series("SFT", sft), series("SRPPO", srppo)])]),
        ])
    }
}
