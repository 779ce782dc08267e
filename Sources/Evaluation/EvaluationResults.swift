import Foundation

/// The result of one evaluation set.
public struct SetResult: Codable, Equatable, Sendable {
    public var name: String
    public var rows: Int
    /// Mean response length in words (IFEval's word count) and in characters.
    public var meanResponseWords: Double
    public var meanResponseCharacters: Double
    public var ifeval: IFEvalSummary?
    public var gsm8k: GSM8KSummary?
    /// How the responses were generated, when a model produced them (`srppo eval --model`).
    public var generation: GenerationSummary?

    public init(name: String, responses: [String]) {
        self.name = name
        rows = responses.count
        let count = Double(max(responses.count, 1))
        meanResponseWords = Double(responses.map(PythonText.countWords).reduce(0, +)) / count
        meanResponseCharacters = Double(responses.map(\.count).reduce(0, +)) / count
    }

    enum CodingKeys: String, CodingKey {
        case name, rows, ifeval, gsm8k, generation
        case meanResponseWords = "mean_response_words", meanResponseCharacters = "mean_response_characters"
    }
}

/// Token-level facts of generated responses: lengths, and how many ended with EOS or were cut off
/// at the token limit. Row i was decoded with seed `firstSeed + i`.
public struct GenerationSummary: Codable, Equatable, Sendable {
    public var meanTokens: Double
    public var eosRate: Double
    public var truncationRate: Double
    public var firstSeed: UInt64

    /// `tokens[i]`: row i's generated token count; `endedWithEOS[i]`: whether it stopped at EOS.
    public init(tokens: [Int], endedWithEOS: [Bool], firstSeed: UInt64) {
        let n = Double(max(tokens.count, 1))
        meanTokens = Double(tokens.reduce(0, +)) / n
        eosRate = Double(endedWithEOS.filter { $0 }.count) / n
        truncationRate = Double(endedWithEOS.filter { !$0 }.count) / n
        self.firstSeed = firstSeed
    }

    enum CodingKeys: String, CodingKey {
        case meanTokens = "mean_tokens", eosRate = "eos_rate", truncationRate = "truncation_rate", firstSeed = "first_seed"
    }
}

/// Mean negative log-likelihood per response token of a set of demonstrations under the model
/// (the response's closing end-of-turn/EOS token included, as SFT trains it).
public struct NLLResult: Codable, Equatable, Sendable {
    public var name: String
    public var examples: Int
    public var tokens: Int
    public var meanNLL: Double

    public init(name: String, examples: Int, tokens: Int, meanNLL: Double) {
        self.name = name
        self.examples = examples
        self.tokens = tokens
        self.meanNLL = meanNLL
    }

    enum CodingKeys: String, CodingKey {
        case name, examples, tokens, meanNLL = "mean_nll"
    }
}

/// Everything one `srppo eval` run measured: one entry per set, held-out NLL of demonstration
/// files, plus free-form metadata (model, decoding, seeds) filled in by whoever produced the responses.
public struct EvaluationResults: Codable, Equatable, Sendable {
    public var metadata: [String: String]
    public var sets: [SetResult]
    public var nll: [NLLResult]?

    public init(metadata: [String: String] = [:], sets: [SetResult] = [], nll: [NLLResult]? = nil) {
        self.metadata = metadata
        self.sets = sets
        self.nll = nll
    }

    /// Pretty-printed JSON with sorted keys (stable for diffs).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    /// A plain-text report: one summary line per set, then per-instruction accuracies for each
    /// IFEval set.
    public func renderTable() -> String {
        var lines: [String] = []
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { lines.append("\(key): \(value)") }
        if !metadata.isEmpty { lines.append("") }

        var summary = TextTable(header: ["set", "kind", "rows", "prompt strict", "prompt loose", "instr strict", "instr loose",
                                         "accuracy", "mean words", "skipped"])
        for set in sets {
            if let ifeval = set.ifeval {
                summary.add([set.name, "ifeval", "\(ifeval.promptLevel.total)",
                             percent(ifeval.promptLevel.strictAccuracy), percent(ifeval.promptLevel.looseAccuracy),
                             percent(ifeval.instructionLevel.strictAccuracy), percent(ifeval.instructionLevel.looseAccuracy),
                             "", String(format: "%.1f", set.meanResponseWords), "\(ifeval.skippedPrompts)"])
            } else if let gsm8k = set.gsm8k {
                summary.add([set.name, "gsm8k", "\(gsm8k.total)", "", "", "", "", percent(gsm8k.accuracy),
                             String(format: "%.1f", set.meanResponseWords), ""])
            }
        }
        lines += summary.render()

        let generated = sets.filter { $0.generation != nil }
        if !generated.isEmpty {
            lines.append("")
            var table = TextTable(header: ["set", "mean tokens", "eos", "truncated", "first seed"])
            for set in generated {
                let g = set.generation!
                table.add([set.name, String(format: "%.1f", g.meanTokens), percent(g.eosRate), percent(g.truncationRate), "\(g.firstSeed)"])
            }
            lines += table.render()
        }
        if let nll, !nll.isEmpty {
            lines.append("")
            var table = TextTable(header: ["demonstrations", "examples", "tokens", "mean NLL/token"])
            for entry in nll { table.add([entry.name, "\(entry.examples)", "\(entry.tokens)", String(format: "%.4f", entry.meanNLL)]) }
            lines += table.render()
        }

        for set in sets {
            guard let ifeval = set.ifeval, !ifeval.byInstruction.isEmpty else { continue }
            lines.append("")
            lines.append("\(set.name): by instruction")
            var table = TextTable(header: ["instruction", "n", "strict", "loose"])
            for (id, tally) in ifeval.byInstruction.sorted(by: { $0.key < $1.key }) {
                table.add([id, "\(tally.total)", percent(tally.strictAccuracy), percent(tally.looseAccuracy)])
            }
            lines += table.render()
            if !ifeval.skippedInstructions.isEmpty {
                let skipped = ifeval.skippedInstructions.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }
                lines.append("skipped (unsupported): \(ifeval.skippedPrompts) prompts; " + skipped.joined(separator: ", "))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
}

/// Left-aligned first column, right-aligned numbers, columns separated by two spaces.
public struct TextTable {
    let header: [String]
    var rows: [[String]] = []

    public init(header: [String]) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
    }
}
