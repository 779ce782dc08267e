"""`srppo generate` on the real SmolLM2 model: generated log-probs against `srppo score` and the
independent float64 NumPy forward (reference_llama.py), reproducibility across batch composition,
finish reasons, streaming and errors."""
import json

import numpy as np
import pytest
from gguf import GGUFReader

from conftest import run_srppo
from reference_llama import GGUFLlama
from test_engine_parity import greedy_tokenize

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Give me three tips for learning to program.",
    "How many legs does a spider have?",
]


@pytest.fixture(scope="module")
def vocabulary(smollm2):
    field = GGUFReader(smollm2).fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


@pytest.fixture(scope="module")
def prompts(vocabulary):
    """Chat prompts in SmolLM2's template, plus two plain-text prompts, as token ids."""
    start, end = vocabulary.index("<|im_start|>"), vocabulary.index("<|im_end|>")

    def chat(question):
        return ([start] + greedy_tokenize(vocabulary, "user\n" + question) + [end]
                + greedy_tokenize(vocabulary, "\n") + [start] + greedy_tokenize(vocabulary, "assistant\n"))

    plain = ["The history of the printing press", "def fibonacci(n):\n"]
    return [chat(q) for q in QUESTIONS] + [greedy_tokenize(vocabulary, t) for t in plain]


def generate(binary, model, lines, *args):
    text = "".join(json.dumps(line) + "\n" for line in lines)
    out = run_srppo(binary, "generate", "--model", model, "--threads", "2", *args, input=text).stdout
    return [json.loads(l) for l in out.splitlines()]


def score(binary, model, prompt, response):
    line = json.dumps({"prompt_ids": prompt, "response_ids": response}) + "\n"
    return json.loads(run_srppo(binary, "score", "--model", model, input=line).stdout)["logprobs"]


@pytest.mark.parametrize("sampling", [["--greedy"], ["--temperature", "0.8", "--top-k", "50", "--top-p", "0.9"],
                                      ["--temperature", "1.2", "--min-p", "0.05"]])
def test_raw_logprobs_equal_scoring_of_the_finished_sequence(smollm2, srppo_bin, prompts, sampling):
    results = generate(srppo_bin, smollm2, [{"prompt_ids": p} for p in prompts], "--max-new-tokens", "40", *sampling)
    assert len(results) == len(prompts)
    worst = 0.0
    for prompt, result in zip(prompts, results):
        assert result["n"] == len(result["ids"]) == len(result["raw_logprobs"]) == len(result["logprobs"]) >= 1
        scored = score(srppo_bin, smollm2, prompt, result["ids"])
        worst = max(worst, float(np.abs(np.array(result["raw_logprobs"]) - np.array(scored)).max()))
        if sampling == ["--greedy"]:
            assert result["logprobs"] == [0] * result["n"]
        else:
            assert all(s <= 1e-6 for s in result["logprobs"])
    print(f"max |generate raw logprob - score| = {worst:.2e}")
    assert worst <= 1e-4


def test_greedy_tokens_and_logprobs_match_the_float64_reference(smollm2, srppo_bin, prompts):
    reference = GGUFLlama(smollm2)
    for prompt in (prompts[0], prompts[4]):
        result = generate(srppo_bin, smollm2, [{"prompt_ids": prompt}], "--greedy", "--max-new-tokens", "24")[0]
        rows = reference.next_token_log_probs(prompt + result["ids"], len(prompt))
        expected = rows[np.arange(len(rows)), result["ids"]]
        np.testing.assert_allclose(result["raw_logprobs"], expected, rtol=0, atol=1e-4)
        # Each greedy token is the reference's most probable one (up to float rounding between
        # near-equal candidates).
        assert np.all(expected >= rows.max(axis=1) - 1e-4)


def test_same_seed_same_tokens_alone_or_in_a_batch_of_eight(smollm2, srppo_bin, prompts):
    lines = [{"prompt_ids": prompts[i % len(prompts)], "seed": 100 + i} for i in range(8)]
    sampling = ["--temperature", "1.0", "--top-p", "0.95", "--max-new-tokens", "32"]
    batched = generate(srppo_bin, smollm2, lines, "--batch-size", "8", *sampling)
    # Lines 0 and 6 share a prompt but not a seed: they differ.
    assert batched[0]["ids"] != batched[6]["ids"]
    for line, result in zip(lines, batched):
        for batch_size in ("1", "8"):
            alone = generate(srppo_bin, smollm2, [line], "--batch-size", batch_size, *sampling)[0]
            assert alone == result
    # Without per-line seeds, line i uses --seed + i.
    unseeded = generate(srppo_bin, smollm2, [{"prompt_ids": l["prompt_ids"]} for l in lines], "--seed", "100", *sampling)
    assert unseeded == batched


def test_finish_reasons(smollm2, srppo_bin, prompts, vocabulary):
    end = vocabulary.index("<|im_end|>")
    greedy = generate(srppo_bin, smollm2, [{"prompt_ids": prompts[0]}], "--greedy", "--max-new-tokens", "100")[0]
    assert greedy["finish_reason"] == "eos" and greedy["ids"][-1] == end
    assert end not in greedy["ids"][:-1]

    short = generate(srppo_bin, smollm2, [{"prompt_ids": prompts[0]}], "--greedy", "--max-new-tokens", "3")[0]
    assert short["finish_reason"] == "length" and short["ids"] == greedy["ids"][:3]

    stop = greedy["ids"][2:4]
    stopped = generate(srppo_bin, smollm2, [{"prompt_ids": prompts[0]}], "--greedy", "--stop-ids", ",".join(map(str, stop)))[0]
    assert stopped["finish_reason"] == "stop" and stopped["ids"] == greedy["ids"][:4]

    ignoring = generate(srppo_bin, smollm2, [{"prompt_ids": prompts[0]}], "--greedy", "--ignore-eos",
                        "--max-new-tokens", str(greedy["n"] + 5))[0]
    assert ignoring["finish_reason"] == "length" and ignoring["ids"][:greedy["n"]] == greedy["ids"]


def test_stream_prints_tokens_as_they_come(smollm2, srppo_bin, prompts, tmp_path):
    line = json.dumps({"prompt_ids": prompts[1]}) + "\n"
    out = tmp_path / "out.jsonl"
    args = ("generate", "--model", smollm2, "--greedy", "--max-new-tokens", "12", "--stream")
    streamed = run_srppo(srppo_bin, *args, "--output", str(out), input=line).stdout
    record = json.loads(out.read_text())
    # SmolLM2 has a tokenizer: the stream is the text, character for character.
    assert streamed == record["text"] + "\n"
    two = line + line
    failed = run_srppo(srppo_bin, *args, input=two, check=False)
    assert failed.returncode == 1 and "--stream prints one generation: the input has 2 prompts" in failed.stderr


def test_text_and_chat_prompts_are_the_tokenizers_ids(smollm2, srppo_bin):
    def generate(record):
        out = run_srppo(srppo_bin, "generate", "--model", smollm2, "--greedy", "--max-new-tokens", "6",
                        input=json.dumps(record) + "\n").stdout
        return json.loads(out)

    def ids(record):
        return json.loads(run_srppo(srppo_bin, "tokenize", "--model", smollm2, "--jsonl",
                                    input=json.dumps(record) + "\n").stdout)["ids"]

    text = generate({"prompt": "The capital of France is"})
    assert text["ids"] == generate({"prompt_ids": ids({"text": "The capital of France is"})})["ids"]
    messages = [{"role": "user", "content": "What is 2+2?"}]
    chat = generate({"messages": messages})
    assert chat["ids"] == generate({"prompt_ids": ids({"messages": messages, "add_generation_prompt": True})})["ids"]
    decoded = run_srppo(srppo_bin, "tokenize", "--model", smollm2, "--decode", input=json.dumps({"ids": chat["ids"]}) + "\n")
    assert chat["text"] == json.loads(decoded.stdout)["text"]


def test_bad_input_gives_one_line_errors(smollm2, srppo_bin):
    cases = [
        ('{"prompt_ids":[1,2]}\n{"prompt_ids":[]}\n', "<stdin>:2: empty prompt"),
        ('{"prompt_ids":[1,99999]}\n', "<stdin>:1: prompt token 1 (99999) is outside the vocabulary (0..<49152)"),
        ('{"messages":"hi"}\n', '<stdin>:1: field "messages"'),
        ('{"prompt_ids":[1], "seed": -1}\n', '<stdin>:1: field "seed"'),
        ("not json\n", "<stdin>:1: not valid JSON"),
    ]
    for text, message in cases:
        result = run_srppo(srppo_bin, "generate", "--model", smollm2, input=text, check=False)
        assert result.returncode == 1, text
        assert result.stderr.startswith("srppo: ") and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    usage = run_srppo(srppo_bin, "generate", "--model", smollm2, "--top-p", "0", input="", check=False)
    assert usage.returncode == 2 and "top_p must be in (0, 1]" in usage.stderr


def test_bench_generate_reports_every_batch_size(smollm2, srppo_bin):
    out = run_srppo(srppo_bin, "bench", "generate", "--model", smollm2, "--batch-sizes", "1,2", "--prompt-tokens", "8",
                    "--new-tokens", "4", "--repeats", "1", "--threads", "2").stdout
    lines = [json.loads(l) for l in out.splitlines()]
    assert [l.get("batch") for l in lines[:2]] == [1, 2]
    for l in lines[:2]:
        assert l["new_tokens"] == 4 and l["prompt_tokens"] == 8 and l["threads"] == 2 and l["tokens_per_s"] > 0
    assert lines[2]["comparison"].startswith("decode tokens/s, batch 2 over batch 1") and lines[2]["ratio"] > 0
