#!/usr/bin/env python3
"""Tokenizer throughput on one thread: `srppo bench tokenize` beside Hugging Face `tokenizers`, on the
same texts, in the same run.

    .venv/bin/python scripts/bench_tokenize.py [--model PATH] [--srppo .build/release/srppo] [--repeats 7]

Inputs: English prose (the licence texts in /usr/share/common-licenses, one paragraph per text),
Python code (the standard library's modules, 40 lines per text, 2 MB) and the multilingual test
corpus of Tests/python/tokenizer_corpus.py. The reference is the tokenizer.json rebuilt from the
GGUF metadata (Tests/python/hf_reference.py), run with TOKENIZERS_PARALLELISM=false and
RAYON_NUM_THREADS=1. Prints one JSON line per input and implementation, then a Markdown table.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "python"))
import hf_reference  # noqa: E402
import tokenizer_corpus  # noqa: E402


def english():
    texts = []
    for path in sorted(pathlib.Path("/usr/share/common-licenses").iterdir()):
        if path.is_file():
            texts += [p for p in path.read_text(errors="replace").split("\n\n") if p.strip()]
    return texts


def code(limit=2_000_000):
    texts, size = [], 0
    for path in sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        lines = path.read_text(errors="replace").splitlines(keepends=True)
        for start in range(0, len(lines), 40):
            text = "".join(lines[start:start + 40])
            texts.append(text)
            size += len(text.encode())
            if size >= limit:
                return texts
    return texts


def median_rate(amount, run, repeats):
    run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(amount / (time.perf_counter() - start) / 1e6)
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = pathlib.Path.home() / ".cache" / "srppo" / "smollm2.path"
    parser.add_argument("--model", default=default_model.read_text().strip() if default_model.exists() else None)
    parser.add_argument("--srppo", default=str(ROOT / ".build" / "release" / "srppo"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if not args.model:
        parser.error("--model is needed (scripts/setup.sh writes ~/.cache/srppo/smollm2.path)")

    reference = hf_reference.tokenizer_from_gguf(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, texts in [("English prose", english()), ("Python code", code()), ("multilingual test corpus", tokenizer_corpus.corpus())]:
            path = pathlib.Path(folder) / "texts.jsonl"
            path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
            ours = json.loads(subprocess.run(
                [args.srppo, "bench", "tokenize", "--model", args.model, "--input", str(path), "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True).stdout)
            ids = [e.ids for e in reference.encode_batch(texts, add_special_tokens=False)]
            size = sum(len(t.encode()) for t in texts)
            decoded = sum(len(t.encode()) for t in reference.decode_batch(ids, skip_special_tokens=False))
            theirs = {
                "bench": "tokenize-huggingface", "input": name, "threads": 1, "repeats": args.repeats,
                "texts": len(texts), "bytes": size, "tokens": sum(map(len, ids)),
                "encode_mb_per_s": median_rate(size, lambda: reference.encode_batch(texts, add_special_tokens=False), args.repeats),
                "decode_mb_per_s": median_rate(decoded, lambda: reference.decode_batch(ids, skip_special_tokens=False), args.repeats),
            }
            ours["input"] = name
            print(json.dumps(ours))
            print(json.dumps(theirs))
            assert ours["tokens"] == theirs["tokens"], "srppo and Hugging Face disagree on the token count"
            rows.append((name, len(texts), size, theirs["tokens"], ours["encode_mb_per_s"]["median"], theirs["encode_mb_per_s"],
                         ours["decode_mb_per_s"]["median"], theirs["decode_mb_per_s"]))

    print("\n| input | texts | MB | tokens | srppo encode MB/s | HF encode MB/s | × | srppo decode MB/s | HF decode MB/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, count, size, tokens, ours, theirs, ours_decode, theirs_decode in rows:
        print(f"| {name} | {count} | {size / 1e6:.2f} | {tokens} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.1f} "
              f"| {ours_decode:.0f} | {theirs_decode:.0f} |")


if __name__ == "__main__":
    main()
