"""`srppo eval` against the reference IFEval implementation (lm-eval's copy of Google's code).

Random rows with 1–3 instructions and random arguments get random responses built from pieces
that exercise each checker's edge cases (bullets, highlights, *** dividers, titles, JSON fences,
postscripts, quotes, contractions, capitals, abbreviations, numbers, blank lines). Every
per-instruction verdict, strict and loose, must equal the reference's.

The reference also asks langdetect whether a response is English for change_case:english_*;
srppo uses a script check instead (documented). Those two ids are compared on the case part
(`str.isupper` / `str.islower` through the reference's own loose variants) and on langdetect only
where langdetect says "en".
"""
import json
import random

import pytest

from conftest import run_srppo
import ifeval_reference

ROWS = 1500

WORDS = ["river", "stone", "light", "garden", "market", "signal", "paper", "winter", "coffee", "engine",
         "cat", "category", "read", "bread", "answer", "note", "plan", "the", "and", "section", "idea"]
CAPS = ["NASA", "USA", "IMPORTANT", "OK", "AI", "NOTE", "DON'T", "I'M", "IT'S", "CANNOT", "U.S.", "A",
        "WELL-KNOWN", "\"LOUD\"", "(BIG)", "NO,", "YES:"]
ODD = ["Dr.", "e.g.", "i.e.", "Mr.", "3.5", "1,000", "$20", "2024.", "J.", "etc.", "...", "—", "'quoted'",
       "don't", "it's", "can't", "cannot", "gonna", "p.m.", "U.S.", "No.", "St.", "vs.", "--", "(see", "below)"]
END_PHRASES = ["Any other questions?", "Is there anything else I can help with?", "Let me know if you have additional questions."]
KEYWORDS = ["river", "cat", "plan", "light", "idea", "section", "answer"]


def word(rng):
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(CAPS)
    if roll < 0.16:
        return rng.choice(ODD)
    w = rng.choice(WORDS)
    return w.capitalize() if rng.random() < 0.1 else w


def sentence(rng):
    words = [word(rng) for _ in range(rng.randint(2, 9))]
    words[0] = words[0][:1].upper() + words[0][1:]
    if rng.random() < 0.15:
        words.insert(rng.randint(1, len(words)), ",")
    text = " ".join(words).replace(" ,", ",")
    return text + rng.choice([".", ".", ".", "!", "?", "", " ...", ".\"", ".)"])


def paragraph(rng):
    return " ".join(sentence(rng) for _ in range(rng.randint(1, 4)))


def block(rng, prompt):
    """One structural piece of a response."""
    kind = rng.random()
    if kind < 0.14:
        mark = rng.choice(["*", "-", "*", "**", "  *"])
        return "\n".join(f"{mark} {sentence(rng)}" for _ in range(rng.randint(1, 5)))
    if kind < 0.22:
        splitter = rng.choice(["Section", "SECTION", "section"])
        return "\n".join(f"{splitter} {i + 1}\n{paragraph(rng)}" for i in range(rng.randint(1, 4)))
    if kind < 0.30:
        return rng.choice(["P.S.", "P.P.S", "p. s.", "PS", "P.S"]) + " " + sentence(rng)
    if kind < 0.36:
        return "<<" + rng.choice(["A title", " ", "Poem of joy", ""]) + ">>"
    if kind < 0.42:
        return f"[{rng.choice(WORDS)}] and [{rng.choice(WORDS)}]" + rng.choice(["", " [x]", " []"])
    if kind < 0.50:
        w = rng.choice(WORDS)
        return rng.choice([f"*{w}*", f"**{w} {w}**", "* *", f"*{w}* and *{w}*", "****"])
    if kind < 0.56:
        return rng.choice(["***", "******", "\n***\n", "* * *"])
    if kind < 0.60:
        return prompt
    if kind < 0.64:
        return rng.choice(["My answer is yes.", "My answer is no.", "my answer is maybe.", "My answer is maybe"])
    return paragraph(rng)


def random_body(rng, prompt):
    roll = rng.random()
    if roll < 0.06:
        body = json.dumps({"answer": paragraph(rng), "n": rng.randint(0, 9)})
        return rng.choice(["", "```json\n", "```\n", "```JSON"]) + body + rng.choice(["", "\n```", "```", " x"])
    if roll < 0.09:
        return rng.choice(["", "   ", "\n\n", "*", "\"\"", "\"a\""])
    pieces = [block(rng, prompt) for _ in range(rng.randint(1, 5))]
    return "".join(piece + rng.choice(["\n\n", "\n", " ", "\n\n\n"]) for piece in pieces).rstrip()


def targeted_body(rng, iid, kwargs, prompt):
    """A response meant to follow instruction `iid` (the wrappers may still break it)."""
    n = kwargs.get("num_paragraphs") or kwargs.get("num_bullets") or kwargs.get("num_sections") or 2
    if iid == "change_case:english_lowercase":
        return paragraph(rng).lower()
    if iid == "change_case:english_capital":
        return paragraph(rng).upper()
    if iid == "length_constraints:nth_paragraph_first_word":
        paragraphs = [paragraph(rng) for _ in range(n)]
        first = rng.choice([kwargs["first_word"], kwargs["first_word"].capitalize(), "'" + kwargs["first_word"]])
        paragraphs[kwargs["nth_paragraph"] - 1] = first + rng.choice([" ", ", ", ". "]) + paragraphs[kwargs["nth_paragraph"] - 1]
        return rng.choice(["\n\n", "\n\n\n", " \n\n"]).join(paragraphs)
    if iid == "length_constraints:number_paragraphs":
        return rng.choice(["\n***\n", "\n\n***\n\n", " *** "]).join(paragraph(rng) for _ in range(n))
    if iid == "detectable_format:constrained_response":
        return rng.choice(["My answer is yes.", "My answer is no.", "My answer is maybe."]) + " " + sentence(rng)
    if iid == "startend:end_checker":
        return paragraph(rng) + " " + rng.choice([kwargs["end_phrase"], kwargs["end_phrase"].upper()])
    if iid == "detectable_format:json_format":
        return rng.choice(["", "```json\n"]) + json.dumps({"a": paragraph(rng)}) + rng.choice(["", "\n```"])
    if iid == "detectable_content:postscript":
        return paragraph(rng) + "\n\n" + kwargs["postscript_marker"] + " " + sentence(rng)
    if iid == "detectable_content:number_placeholders":
        return paragraph(rng) + " " + " ".join(f"[{rng.choice(WORDS)}]" for _ in range(rng.randint(1, 4)))
    if iid == "detectable_format:number_bullet_lists":
        return paragraph(rng) + "\n" + "\n".join(f"{rng.choice(['*', '-'])} {sentence(rng)}" for _ in range(n))
    if iid == "detectable_format:number_highlighted_sections":
        return " ".join(f"*{rng.choice(WORDS)}* {sentence(rng)}" for _ in range(rng.randint(1, 4)))
    if iid == "detectable_format:multiple_sections":
        return "\n".join(f"{kwargs['section_spliter']} {i + 1}\n{paragraph(rng)}" for i in range(n))
    if iid == "detectable_format:title":
        return "<<" + paragraph(rng)[:20] + ">>\n" + paragraph(rng)
    if iid == "startend:quotation":
        return "\"" + paragraph(rng) + "\""
    if iid == "combination:two_responses":
        return paragraph(rng) + rng.choice(["\n******\n", "******"]) + paragraph(rng)
    if iid == "combination:repeat_prompt":
        return rng.choice([prompt, prompt.upper(), "  " + prompt]) + "\n" + paragraph(rng)
    return random_body(rng, prompt)


def make_response(rng, row):
    prompt = row["prompt"]
    if rng.random() < 0.6:
        i = rng.randrange(len(row["instruction_id_list"]))
        text = targeted_body(rng, row["instruction_id_list"][i], row["kwargs"][i], prompt)
    else:
        text = random_body(rng, prompt)
    if rng.random() < 0.12:
        text += " " + rng.choice(END_PHRASES)
    case = rng.random()
    if case < 0.06:
        text = text.lower()
    elif case < 0.1:
        text = text.upper()
    if rng.random() < 0.06:
        text = "\"" + text + "\""
    if rng.random() < 0.15:
        text = rng.choice(["Sure! Here it is:", "Title line", "Okay.", "**Note**"]) + "\n" + text
    if rng.random() < 0.15:
        text = text + "\n" + rng.choice(["Hope this helps!", "**End**", "Any other questions?", "*"])
    return text


def instruction(rng, prompt):
    """A random (id, kwargs) pair over every supported IFEval instruction."""
    relation = lambda: rng.choice(["less than", "at least"])
    choices = [
        ("change_case:english_lowercase", {}),
        ("change_case:english_capital", {}),
        ("change_case:capital_word_frequency", {"capital_frequency": rng.randint(1, 6), "capital_relation": relation()}),
        ("punctuation:no_comma", {}),
        ("length_constraints:number_words", {"num_words": rng.randint(3, 80), "relation": relation()}),
        ("length_constraints:number_sentences", {"num_sentences": rng.randint(1, 12), "relation": relation()}),
        ("length_constraints:number_paragraphs", {"num_paragraphs": rng.randint(1, 4)}),
        ("length_constraints:nth_paragraph_first_word",
         {"num_paragraphs": (n := rng.randint(1, 4)), "nth_paragraph": rng.randint(1, n),
          "first_word": rng.choice(WORDS + ["Sure", "p.s."])}),
        ("keywords:existence", {"keywords": rng.sample(KEYWORDS, rng.randint(1, 2))}),
        ("keywords:forbidden_words", {"forbidden_words": rng.sample(KEYWORDS, rng.randint(1, 2))}),
        ("keywords:frequency", {"keyword": rng.choice(KEYWORDS), "frequency": rng.randint(1, 4), "relation": relation()}),
        ("keywords:letter_frequency", {"letter": rng.choice("aeiostrnx"), "let_frequency": rng.randint(1, 15),
                                       "let_relation": relation()}),
        ("detectable_format:number_bullet_lists", {"num_bullets": rng.randint(1, 5)}),
        ("detectable_format:number_highlighted_sections", {"num_highlights": rng.randint(1, 3)}),
        ("detectable_format:multiple_sections", {"section_spliter": rng.choice(["Section", "SECTION"]),
                                                 "num_sections": rng.randint(1, 4)}),
        ("detectable_format:json_format", {}),
        ("detectable_format:title", {}),
        ("detectable_format:constrained_response", {}),
        ("detectable_content:postscript", {"postscript_marker": rng.choice(["P.S.", "P.P.S", "PS"])}),
        ("detectable_content:number_placeholders", {"num_placeholders": rng.randint(1, 3)}),
        ("startend:end_checker", {"end_phrase": rng.choice(END_PHRASES)}),
        ("startend:quotation", {}),
        ("combination:repeat_prompt", {"prompt_to_repeat": prompt}),
        ("combination:two_responses", {}),
    ]
    return rng.choice(choices)


def make_rows(seed, count):
    rng = random.Random(seed)
    rows = []
    for key in range(count):
        prompt = "Write about the " + rng.choice(WORDS) + " and the " + rng.choice(WORDS) + "."
        picked = {}
        for _ in range(rng.randint(1, 3)):
            iid, kwargs = instruction(rng, prompt)
            picked[iid] = kwargs
        row = {"key": key, "prompt": prompt, "instruction_id_list": list(picked), "kwargs": list(picked.values())}
        row["response"] = make_response(rng, row)
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    try:
        root = tmp_path_factory.mktemp("nltk_data")
        punkt_dir = ifeval_reference.write_punkt_tab(root)
        utils = ifeval_reference.load_reference(root)
    except ImportError as error:
        pytest.fail(f"reference IFEval not installed: {error} (run scripts/setup.sh)")
    return utils, punkt_dir


LANGUAGE_IDS = {"change_case:english_lowercase", "change_case:english_capital"}


def case_only_verdicts(utils, row):
    """The reference's verdicts with langdetect taken to answer "en" (only the case test left)."""
    import sys

    langdetect = sys.modules["lm_eval.tasks.ifeval.instructions"].langdetect
    detect = langdetect.detect
    langdetect.detect = lambda text: "en"
    try:
        return ifeval_reference.reference_verdicts(utils, row, row["response"])
    finally:
        langdetect.detect = detect


def compare(rows, ours, utils, exact_ids, tally=None):
    """Returns the mismatches: (row key, instruction, mode, ours, reference, response)."""
    mismatches = []
    for row, detail in zip(rows, ours):
        reference = dict(zip(("strict", "loose"), ifeval_reference.reference_verdicts(utils, row, row["response"])))
        case_only = None
        for i, iid in enumerate(row["instruction_id_list"]):
            if iid not in exact_ids:
                continue
            for mode in ("strict", "loose"):
                mine, expected = detail["verdict"][mode][i], reference[mode][i]
                if tally is not None:
                    tally.setdefault((iid, mode), [0, 0])[expected] += 1
                if iid in LANGUAGE_IDS and mine != expected:
                    case_only = case_only or dict(zip(("strict", "loose"), case_only_verdicts(utils, row)))
                    expected = case_only[mode][i]
                if mine != expected:
                    mismatches.append((row["key"], iid, mode, mine, expected, row["response"]))
    return mismatches


def run_ours(srppo_bin, tmp_path, rows, punkt_dir=None):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    details = tmp_path / "details.jsonl"
    args = ["eval", "--responses", str(path), "--details", str(details)]
    if punkt_dir is not None:
        args += ["--punkt", str(punkt_dir)]
    run_srppo(srppo_bin, *args)
    return [json.loads(line) for line in details.read_text().splitlines()]


def test_every_verdict_matches_reference(srppo_bin, reference, tmp_path):
    utils, punkt_dir = reference
    rows = make_rows(seed=11, count=ROWS)
    ours = run_ours(srppo_bin, tmp_path, rows, punkt_dir)
    all_ids = {iid for row in rows for iid in row["instruction_id_list"]}
    assert len(all_ids) == 24
    tally = {}
    mismatches = compare(rows, ours, utils, all_ids, tally)
    # The responses must exercise both verdicts of every instruction, or the test proves little.
    for (iid, mode), (false_count, true_count) in tally.items():
        assert false_count >= 10 and true_count >= 10, f"{iid} {mode}: {true_count} true, {false_count} false"
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"


def test_builtin_sentence_rules_match_reference_on_plain_prose(srppo_bin, reference, tmp_path):
    """Without NLTK's learned Punkt statistics, sentence counts still agree on ordinary prose."""
    utils, _ = reference
    rng = random.Random(5)
    rows = []
    for key in range(300):
        text = " ".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))).capitalize() + rng.choice([".", "!", "?"])
            for _ in range(rng.randint(1, 8)))
        rows.append({"key": key, "prompt": "p", "instruction_id_list": ["length_constraints:number_sentences"],
                     "kwargs": [{"num_sentences": rng.randint(1, 8), "relation": rng.choice(["less than", "at least"])}],
                     "response": text})
    ours = run_ours(srppo_bin, tmp_path, rows)
    assert not compare(rows, ours, utils, {"length_constraints:number_sentences"})


def test_generated_references_follow_their_instructions_by_the_reference(srppo_bin, reference, tmp_path):
    """`srppo data generate`: every reference response passes the reference IFEval checkers, and
    no out-of-domain combination occurs in the training sets."""
    utils, _ = reference
    out = tmp_path / "data"
    run_srppo(srppo_bin, "data", "generate", "--out", str(out), "--seed", "3")
    sets = {}
    for name, field in (("demos", "response"), ("eval_ood", "reference"), ("eval_in_domain", "reference")):
        rows = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        sets[name] = rows
        for row in rows:
            strict, _ = ifeval_reference.reference_verdicts(utils, row, row[field])
            if not all(strict):
                strict, _ = case_only_verdicts(utils, dict(row, response=row[field]))
            assert all(strict), (name, row)
    sets["ppo"] = [json.loads(line) for line in (out / "ppo_prompts.jsonl").read_text().splitlines()]
    combos = lambda rows: {tuple(sorted(r["instruction_id_list"])) for r in rows}
    assert not combos(sets["eval_ood"]) & (combos(sets["demos"]) | combos(sets["ppo"]))
    manifest = json.loads((out / "manifest.json").read_text())
    training = {tuple(c) for c in manifest["training_combinations"]}
    held_out = {tuple(c) for c in manifest["held_out_combinations"]}
    assert not training & held_out
    assert combos(sets["demos"]) | combos(sets["ppo"]) | combos(sets["eval_in_domain"]) <= training
    assert combos(sets["eval_ood"]) <= held_out
