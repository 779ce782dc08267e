import Evaluation
import XCTest

/// Each checker on responses that follow and do not follow it, with IFEval's edge cases.
/// Expected verdicts follow Google's IFEval definitions (Tests/python checks them against the
/// reference implementation on random responses too).
final class InstructionCheckerTests: XCTestCase {
    private func check(_ id: String, _ kwargs: [String: JSONValue] = [:], _ cases: [(String, Bool)],
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let instruction = try XCTUnwrap(try InstructionRegistry.make(id: id, arguments: kwargs), "\(id) unsupported", file: file, line: line)
        for (response, expected) in cases {
            XCTAssertEqual(instruction.isFollowed(by: response), expected, "\(id) \(kwargs) on \(response.debugDescription)",
                           file: file, line: line)
        }
    }

    func testCase() throws {
        try check("change_case:english_lowercase", [:], [("hello world.", true), ("Hello world.", false), ("123 !", false),
                                                         ("привет мир", false)])
        try check("change_case:english_capital", [:], [("HELLO WORLD 42.", true), ("HELLO World", false), ("ÉTÉ OK", true)])
        let atLeast3: [String: JSONValue] = ["capital_frequency": .int(3), "capital_relation": .string("at least")]
        try check("change_case:capital_word_frequency", atLeast3, [
            ("I LOVE NASA", true),          // I, LOVE, NASA
            ("I love NASA", false),
            ("DON'T go", false),            // DO, N'T: two tokens
            ("DON'T GO", true),             // DO, N'T, GO
            ("CANNOT stop", false),         // CAN, NOT
            ("CANNOT STOP", true),
            ("WELL-KNOWN U.S. fact", false), // hyphenated and dotted words are one token each
        ])
        try check("change_case:capital_word_frequency", ["capital_frequency": .int(2), "capital_relation": .string("less than")],
                  [("just A word", true), ("TWO CAPS", false)])
        try check("punctuation:no_comma", [:], [("a b c", true), ("a, b", false), ("1,000", false)])
    }

    func testLength() throws {
        try check("length_constraints:number_words", ["num_words": .int(4), "relation": .string("less than")], [
            ("one two three", true),
            ("one-two three_four five", false),  // \w+ runs: one, two, three_four, five
            ("don't stop", true),                // don, t, stop
        ])
        try check("length_constraints:number_words", ["num_words": .int(2), "relation": .string("at least")],
                  [("a b", true), ("a", false)])
        try check("length_constraints:number_sentences", ["num_sentences": .int(2), "relation": .string("at least")], [
            ("Dr. Smith arrived. He sat down.", true),
            ("Dr. Smith arrived and sat down.", false),
            ("Very bad acting!!! I promise.", true),
        ])
        try check("length_constraints:number_paragraphs", ["num_paragraphs": .int(2)], [
            ("a\n***\nb", true),
            ("a *** b", true),
            ("a\n***\n***\nb", false),           // empty paragraph in the middle
            ("***\na\n***\nb\n***", true),       // empty pieces at the ends do not count
            ("a\n\nb", false),
        ])
        let nth: [String: JSONValue] = ["num_paragraphs": .int(2), "nth_paragraph": .int(2), "first_word": .string("Also")]
        try check("length_constraints:nth_paragraph_first_word", nth, [
            ("x\n\nAlso y", true),
            ("x\n\n\"Also,\" y", true),          // leading quote stripped, word ends at the comma
            ("x\n\nAlso y\n\nz", false),         // three paragraphs
            ("x\n\nAlways y", false),
            ("x\n\n\n\nAlso y", false),          // IFEval indexes the raw pieces: piece 2 is blank
        ])
    }

    func testKeywords() throws {
        try check("keywords:existence", ["keywords": .strings(["cat", "sun"])],
                  [("The Category of SUNny days", true), ("cat only", false)])
        try check("keywords:forbidden_words", ["forbidden_words": .strings(["cat"])],
                  [("a category", true), ("a Cat!", false)])
        try check("keywords:frequency", ["keyword": .string("cat"), "frequency": .int(2), "relation": .string("less than")],
                  [("cat", true), ("cat category", false)])
        try check("keywords:frequency", ["keyword": .string(" cat "), "frequency": .int(2), "relation": .string("at least")],
                  [("CAT cat", true), ("dog", false)])
        try check("keywords:letter_frequency", ["letter": .string("A"), "let_frequency": .int(3), "let_relation": .string("at least")],
                  [("Aaa", true), ("ab", false)])
    }

    func testFormat() throws {
        try check("detectable_format:number_bullet_lists", ["num_bullets": .int(2)], [
            ("* a\n* b", true),
            ("* a\n- b\n* c", false),
            ("**bold** intro\n* a\n  - b", true),   // "**" does not start a bullet
            ("* a", false),
        ])
        try check("detectable_format:number_highlighted_sections", ["num_highlights": .int(2)], [
            ("*a* and **b**", true),                 // one single-star span, one double-star span
            ("*a* and * *", false),                  // blank span does not count
            ("**bold**", false),                     // only the double-star pass sees it
            ("**bold** *x*", true),
            ("*a\nb*", false),
        ])
        let sections: [String: JSONValue] = ["section_spliter": .string("Section"), "num_sections": .int(2)]
        try check("detectable_format:multiple_sections", sections, [
            ("Section 1\na\nSection 2\nb", true),
            ("SECTION 1\na\nSECTION 2\nb", false),   // case-sensitive
            ("Section 1 only", false),
        ])
        try check("detectable_format:json_format", [:], [
            ("```json\n{\"a\": 1}\n```", true), ("{\"a\": [1, 2]}", true), ("\"a string\"", true),
            ("{\"a\": 1} and more", false), ("```\n```", false), ("not json", false),
        ])
        try check("detectable_format:title", [:], [("<<My title>>\ntext", true), ("<< >>", false), ("<<a\nb>>", false)])
        try check("detectable_format:constrained_response", [:],
                  [("My answer is yes. Because.", true), ("my answer is yes.", false), ("My answer is maybe", false)])
    }

    func testContentStartEndAndCombination() throws {
        try check("detectable_content:postscript", ["postscript_marker": .string("P.S.")],
                  [("text\nP.S. hi", true), ("text\np. s. hi", true), ("text PS hi", false)])
        try check("detectable_content:postscript", ["postscript_marker": .string("P.P.S")],
                  [("text\nP.P.S. hi", true), ("text\nP.S. hi", false)])
        try check("detectable_content:number_placeholders", ["num_placeholders": .int(2)],
                  [("[a] and [b]", true), ("[a]", false), ("[] [x]", true)])
        try check("startend:end_checker", ["end_phrase": .string("Any questions?")],
                  [("Text. any questions?\"", true), ("Any questions? Bye", false)])
        try check("startend:quotation", [:], [("  \"hi\" ", true), ("\"", false), ("hi", false)])
        try check("combination:repeat_prompt", ["prompt_to_repeat": .string("Write a poem.")],
                  [("  write a POEM. Here it is", true), ("Sure: write a poem.", false)])
        try check("combination:two_responses", [:], [
            ("a\n******\nb", true), ("a ****** a", false), ("a ****** ****** b", false), ("****** a ****** b", true),
            ("a ****** b ****** c", false),
        ])
    }

    func testUnsupportedAndInvalidArguments() throws {
        XCTAssertNil(try InstructionRegistry.make(id: "language:response_language", arguments: ["language": .string("fr")]))
        XCTAssertEqual(InstructionRegistry.supportedIDs.count, 24)
        XCTAssertThrowsError(try InstructionRegistry.make(id: "length_constraints:number_words", arguments: ["relation": .string("at least")])) {
            XCTAssertEqual("\($0)", "instruction length_constraints:number_words: argument \"num_words\": missing")
        }
        XCTAssertThrowsError(try InstructionRegistry.make(id: "length_constraints:number_words",
                                                          arguments: ["num_words": .int(3), "relation": .string("at most")])) {
            XCTAssertEqual("\($0)", "instruction length_constraints:number_words: argument \"relation\": \"at most\" is not \"less than\" or \"at least\"")
        }
        XCTAssertThrowsError(try InstructionRegistry.make(id: "keywords:letter_frequency",
                                                          arguments: ["letter": .string("ab"), "let_frequency": .int(1),
                                                                      "let_relation": .string("at least")]))
        // Null values count as absent (the Hugging Face copy of IFEval lists every name with null).
        XCTAssertNotNil(try InstructionRegistry.make(id: "detectable_format:title", arguments: ["num_words": .null]))
    }

    /// Counts from NLTK's Punkt tokenizer given the same abbreviation list as the built-in rules
    /// (PunktParameters.abbrev_types set to it), computed once with nltk 3.10.
    func testSentenceCountsMatchPunktWithTheSameAbbreviations() {
        let expected: [(String, Int)] = [
            ("Hello world. This is a test.", 2), ("Dr. Smith arrived. He sat down.", 2), ("Wait... what? Really!", 2),
            ("It is 5 p.m. now. Go home.", 2), ("He said \"Stop.\" Then he left.", 2), ("(See below.) Next sentence.", 2),
            ("One. Two. Three. Four.", 4), ("Born in 1990. He grew up fast.", 2), ("Very bad acting!!! I promise.", 2),
            ("e.g. this one? Yes!", 2), ("No punctuation here", 1), ("Line one\n\nLine two. Line three.", 2), ("", 0),
            ("   ", 0), ("J. S. Bach wrote music. It is good.", 2), ("The U.S. Army is big. It is old.", 2),
            ("Prices rose 5.5 percent. Then fell.", 2), ("What?! No way.", 2),
        ]
        let splitter = SentenceSplitter()
        for (text, count) in expected {
            XCTAssertEqual(splitter.countSentences(text), count, text.debugDescription)
        }
    }
}
