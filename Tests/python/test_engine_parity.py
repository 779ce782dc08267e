"""The engine's per-token log-probs on the real SmolLM2 model against the independent float64 NumPy
implementation (reference_llama.py), and consistency across batching and export formats."""
import json

import numpy as np
import pytest
from gguf import GGUFReader

from conftest import run_srppo
from reference_llama import GGUFLlama

TEXTS = [
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined "
    "movable metal type, oil-based inks and a wooden press adapted from those used to make wine. Within a few "
    "decades presses had spread to more than two hundred cities across Europe, and the cost of books fell sharply. "
    "Printers became publishers, editors and booksellers at once; they standardized spelling, invented title pages "
    "and page numbers, and argued with censors about what could be sold. Scholars could finally compare identical "
    "copies of a text, which changed how science and law were practised for the following three centuries.",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n"
    "        a, b = b, a + b\n    return a\n\nfor i in range(10):\n    print(i, fibonacci(i))\n\n"
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
    "        self.items.append(item)\n\n    def pop(self):\n        if not self.items:\n"
    "            raise IndexError('pop from empty stack')\n        return self.items.pop()\n",
    "Photosynthesis converts light energy into chemical energy. In the light-dependent reactions, water is split "
    "and oxygen is released; in the Calvin cycle, carbon dioxide is fixed into sugars using ATP and NADPH. Plants, "
    "algae and cyanobacteria all rely on this process, which ultimately feeds nearly every food chain on Earth. "
    "The enzyme RuBisCO, which performs the fixation step, is probably the most abundant protein in the biosphere, "
    "yet it is slow and sometimes grabs oxygen instead of carbon dioxide. Some plants, such as maize and sugarcane, "
    "concentrate carbon dioxide around the enzyme to avoid that waste in hot and dry climates.",
    "Dear team, thank you all for your hard work this quarter. We shipped the new scheduler, cut the p99 latency "
    "in half and closed more than forty customer issues. Next month we will focus on reliability: fuzzing the "
    "parsers, load testing the daemon and writing down how to recover from every failure we can imagine. "
    "Please add your notes to the planning document before Friday, including any risks you see, the tests you "
    "would like to add and the dependencies on other teams. I will share a draft schedule on Monday morning.",
]


def greedy_tokenize(tokens, text):
    """Longest-match tokenization over the GPT-2 byte-level vocabulary: real words from the real
    vocabulary, independent of the engine (the BPE tokenizer is tested separately)."""
    byte_map = {}
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = 0
    for b in range(256):
        byte_map[b] = chr(b) if b in printable else chr(256 + (extra := extra + 1) - 1)
    encoded = "".join(byte_map[b] for b in text.encode("utf-8"))
    index = {t: i for i, t in enumerate(tokens)}
    ids, i = [], 0
    while i < len(encoded):
        for j in range(min(len(encoded), i + 24), i, -1):
            if encoded[i:j] in index:
                ids.append(index[encoded[i:j]])
                i = j
                break
        else:
            raise ValueError(f"no token for {encoded[i]!r}")
    return ids


@pytest.fixture(scope="module")
def sequences(smollm2):
    reader = GGUFReader(smollm2)
    field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
    bos = 1
    seqs = [[bos] + greedy_tokenize(tokens, t) for t in TEXTS]
    assert all(len(s) >= 100 for s in seqs)
    return seqs


def score(binary, model, pairs):
    lines = "".join(json.dumps({"prompt_ids": p, "response_ids": r}) + "\n" for p, r in pairs)
    out = run_srppo(binary, "score", "--model", model, input=lines).stdout
    return [json.loads(l) for l in out.splitlines()]


def test_logprobs_match_float64_reference(smollm2, srppo_bin, sequences):
    reference = GGUFLlama(smollm2)
    results = score(srppo_bin, smollm2, [(s[:1], s[1:]) for s in sequences])
    worst = 0.0
    for seq, res in zip(sequences, results):
        expected = reference.log_probs(seq, 1)
        got = np.array(res["logprobs"])
        assert got.shape == expected.shape
        worst = max(worst, float(np.abs(got - expected).max()))
        assert res["sum"] == pytest.approx(float(expected.sum()), abs=1e-3)
    print(f"max |engine - float64 reference| = {worst:.2e}")
    assert worst <= 1e-4


def test_batch_of_mixed_lengths_equals_scoring_alone(smollm2, srppo_bin, sequences):
    # 8 sequences of different lengths and prompt splits.
    pairs = []
    for i in range(8):
        s = sequences[i % 4][: 40 + 13 * i]
        cut = 1 + (i * 7) % 30
        pairs.append((s[:cut], s[cut:]))
    batched = score(srppo_bin, smollm2, pairs)
    for pair, res in zip(pairs, batched):
        alone = score(srppo_bin, smollm2, [pair])[0]
        np.testing.assert_allclose(res["logprobs"], alone["logprobs"], rtol=0, atol=1e-5)


def test_exported_safetensors_scores_the_same(smollm2, srppo_bin, sequences, tmp_path):
    folder = tmp_path / "hf"
    run_srppo(srppo_bin, "export", "--model", smollm2, "--out", str(folder))
    gguf_again = tmp_path / "again.gguf"
    run_srppo(srppo_bin, "export", "--model", str(folder), "--out", str(gguf_again))
    pairs = [(s[:5], s[5:60]) for s in sequences]
    original = score(srppo_bin, smollm2, pairs)
    for model in (str(folder), str(gguf_again)):
        for a, b in zip(original, score(srppo_bin, model, pairs)):
            np.testing.assert_allclose(b["logprobs"], a["logprobs"], rtol=0, atol=1e-6)
