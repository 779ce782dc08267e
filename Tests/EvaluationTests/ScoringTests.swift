import Evaluation
import Foundation
import XCTest

/// Strict and loose accuracy as IFEval computes them, GSM8K answer extraction, and the results type.
final class ScoringTests: XCTestCase {
    private func row(_ ids: [String], _ kwargs: [[String: JSONValue]]? = nil, prompt: String = "Do it.") -> IFEvalRow {
        IFEvalRow(key: 1, prompt: prompt, instructionIDs: ids, kwargs: kwargs ?? ids.map { _ in [:] })
    }

    func testLooseVariantsAreIFEvalsEight() {
        XCTAssertEqual(IFEvalScorer.looseVariants(of: "Sure:\n*hello*\nBye"),
                       ["Sure:\n*hello*\nBye", "Sure:\nhello\nBye", "*hello*\nBye", "Sure:\n*hello*", "*hello*",
                        "hello\nBye", "Sure:\nhello", "hello"])
        XCTAssertEqual(IFEvalScorer.looseVariants(of: "one line"), ["one line", "one line", "", "", "", "", "", ""])
    }

    func testStrictFailsWhereLooseForgivesAnIntroLine() throws {
        let verdict = try XCTUnwrap(try IFEvalScorer().score(row(["change_case:english_lowercase", "punctuation:no_comma"]),
                                                             response: "Sure here it is:\nhello world"))
        XCTAssertEqual(verdict.strict, [false, true])
        XCTAssertEqual(verdict.loose, [true, true])
        XCTAssertFalse(verdict.followsAllStrict)
        XCTAssertTrue(verdict.followsAllLoose)
    }

    func testLooseRemovesAsterisks() throws {
        let verdict = try XCTUnwrap(try IFEvalScorer().score(row(["startend:quotation"]), response: "**\"hello\"**"))
        XCTAssertEqual(verdict.strict, [false])
        XCTAssertEqual(verdict.loose, [true])
    }

    func testEmptyResponseFollowsNothing() throws {
        let verdict = try XCTUnwrap(try IFEvalScorer().score(row(["keywords:forbidden_words"], [["forbidden_words": .strings(["x"])]]),
                                                             response: "  \n "))
        XCTAssertEqual(verdict.strict, [false])
        XCTAssertEqual(verdict.loose, [false])
    }

    func testSummaryCountsPromptsInstructionsAndSkips() throws {
        let rows = [
            row(["punctuation:no_comma", "detectable_format:title"]),
            row(["punctuation:no_comma"]),
            row(["language:response_language", "punctuation:no_comma"], [["language": .string("fr")], [:]]),
        ]
        let responses = ["Intro\n<<T>> no commas", "a, b", "bonjour"]
        let (result, details) = try Evaluator.evaluate(.ifeval(name: "set", rows: rows)) { prompts in
            XCTAssertEqual(prompts, rows.map(\.prompt))
            return responses
        }
        let summary = try XCTUnwrap(result.ifeval)
        XCTAssertEqual(summary.promptLevel.total, 2)
        XCTAssertEqual(summary.promptLevel.strict, 1)
        XCTAssertEqual(summary.instructionLevel.total, 3)
        XCTAssertEqual(summary.instructionLevel.strict, 2)
        XCTAssertEqual(summary.byInstruction["punctuation:no_comma"]?.total, 2)
        XCTAssertEqual(summary.byInstruction["punctuation:no_comma"]?.strict, 1)
        XCTAssertEqual(summary.byCategory["detectable_format"]?.strict, 1)
        XCTAssertEqual(summary.skippedPrompts, 1)
        XCTAssertEqual(summary.skippedInstructions, ["language:response_language": 1])
        XCTAssertEqual(details[2].unsupported, ["language:response_language"])
        XCTAssertEqual(result.rows, 3)
        XCTAssertEqual(result.meanResponseWords, (4 + 2 + 1) / 3.0, accuracy: 1e-12)
    }

    func testBadArgumentsNameTheRow() {
        let rows = [row(["punctuation:no_comma"]), row(["keywords:existence"], [["keywords": .string("not a list")]])]
        XCTAssertThrowsError(try Evaluator.validate(.ifeval(name: "set", rows: rows))) { error in
            XCTAssertEqual("\(error)", "row 2: instruction keywords:existence: argument \"keywords\": expected a list of strings")
        }
        XCTAssertThrowsError(try Evaluator.validate(.ifeval(name: "set", rows: [row(["punctuation:no_comma"], [])]))) { error in
            XCTAssertEqual("\(error)", "row 1: \"instruction_id_list\" has 1 entries but \"kwargs\" has 0")
        }
    }

    func testDecodesIFEvalRowsWithNullArguments() throws {
        let line = #"{"key": 1000, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"num_words": null}]}"#
        let decoded = try JSONDecoder().decode(IFEvalRow.self, from: Data(line.utf8))
        XCTAssertEqual(decoded.key, 1000)
        XCTAssertEqual(decoded.kwargs, [["num_words": .null]])
        XCTAssertEqual(try IFEvalScorer().score(decoded, response: "no commas")?.strict, [true])
    }

    func testGSM8KExtraction() throws {
        let cases: [(String, Decimal?)] = [
            ("The answer is $1,234.50.", Decimal(string: "1234.5")), ("So she has 3 left.\n#### -7", -7),
            ("First 3 apples then 42.", 42), ("I got 5 then 12,000 units", 12000), ("No numbers here.", nil),
            ("The answer is 18 dollars not 20", 18), ("#### 1,000.00", 1000), ("It costs -$3 in total", -3), ("a loss of $-4", -4),
            ("about 0.5", Decimal(string: "0.5")),
        ]
        for (response, expected) in cases {
            XCTAssertEqual(GSM8K.extractAnswer(from: response), expected, response)
        }
        let problem = GSM8KRow(question: "q", answer: "She pays 2 * 500 = <<2*500=1000>>1000.\n#### 1,000")
        XCTAssertEqual(try problem.referenceNumber(), 1000)
        XCTAssertTrue(try GSM8K.isCorrect(response: "The total is $1,000.", row: problem))
        XCTAssertFalse(try GSM8K.isCorrect(response: "The total is 999.", row: problem))
        XCTAssertThrowsError(try GSM8KRow(question: "q", answer: "42").referenceNumber()) {
            XCTAssertEqual($0 as? GSM8KError, .missingFinalAnswer)
        }
        let (result, _) = try Evaluator.evaluate(.gsm8k(name: "math", rows: [problem, problem])) { _ in ["1000", "nothing"] }
        XCTAssertEqual(result.gsm8k?.correct, 1)
        XCTAssertEqual(result.gsm8k?.noAnswer, 1)
        XCTAssertEqual(result.gsm8k?.accuracy, 0.5)
    }

    func testResultsRoundTripAndTable() throws {
        let (set, _) = try Evaluator.evaluate(.ifeval(name: "eval_ood", rows: [row(["punctuation:no_comma"])])) { _ in ["a, b"] }
        let results = EvaluationResults(metadata: ["model": "sft"], sets: [set])
        let decoded = try JSONDecoder().decode(EvaluationResults.self, from: try results.jsonData())
        XCTAssertEqual(decoded, results)
        let json = String(decoding: try results.jsonData(), as: UTF8.self)
        XCTAssertTrue(json.contains("\"strict_accuracy\" : 0"), json)
        let table = results.renderTable()
        XCTAssertTrue(table.contains("model: sft"), table)
        XCTAssertTrue(table.contains("eval_ood  ifeval     1           0.0%          0.0%"), table)
        XCTAssertTrue(table.contains("punctuation:no_comma  1    0.0%   0.0%"), table)
    }

    func testGenerationSummaryAndNLLRoundTripAndTable() throws {
        var (set, _) = try Evaluator.evaluate(.ifeval(name: "eval_ood", rows: [row(["punctuation:no_comma"]), row(["punctuation:no_comma"])])) {
            _ in ["a b", "c, d"]
        }
        set.generation = GenerationSummary(tokens: [3, 8], endedWithEOS: [true, false], firstSeed: 7)
        XCTAssertEqual(set.generation?.meanTokens, 5.5)
        XCTAssertEqual(set.generation?.eosRate, 0.5)
        XCTAssertEqual(set.generation?.truncationRate, 0.5)
        let results = EvaluationResults(metadata: [:], sets: [set], nll: [NLLResult(name: "heldout", examples: 2, tokens: 40, meanNLL: 1.25)])
        let data = try results.jsonData()
        XCTAssertEqual(try JSONDecoder().decode(EvaluationResults.self, from: data), results)
        let json = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(json.contains("\"truncation_rate\" : 0.5") && json.contains("\"mean_nll\" : 1.25") && json.contains("\"first_seed\" : 7"), json)
        let table = results.renderTable()
        XCTAssertTrue(table.contains("eval_ood          5.5  50.0%      50.0%           7"), table)
        XCTAssertTrue(table.contains("heldout                2      40          1.2500"), table)
        // Results written before these fields existed still load.
        let old = try JSONDecoder().decode(EvaluationResults.self, from: Data(#"{"metadata":{},"sets":[]}"#.utf8))
        XCTAssertNil(old.nll)
    }
}
