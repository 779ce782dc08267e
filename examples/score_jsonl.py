#!/usr/bin/env python3
"""Scores a JSONL file through srppod with the Python client: one output line per input line.

Input lines: {"prompt_ids","response_ids"}, {"prompt","response"} or {"messages"[,"response"]}.
Output lines: {"reward","truncated","n","pt_logprobs","sft_logprobs"} (plus the ids of text items).

    python examples/score_jsonl.py --socket /run/srppod/http.sock pairs.jsonl rewards.jsonl
"""
import argparse
import json
import sys

from srppo_client import Client, SrppodError


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output", nargs="?", help="default: standard output")
    parser.add_argument("--socket", default="/run/srppod/http.sock", help="srppod HTTP socket or http:// URL")
    parser.add_argument("--batch", type=int, default=64, help="items per request")
    args = parser.parse_args()

    with open(args.input) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    client = Client(args.socket, client_name="score-jsonl")
    limit = client.models()["limits"]["max_items"]
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        for start in range(0, len(rows), min(args.batch, limit)):
            chunk = rows[start:start + min(args.batch, limit)]
            # One id per chunk: a retry after a lost connection is answered without computing again.
            for result in client.score(chunk, request_id=f"score-jsonl-{start}")["results"]:
                out.write(json.dumps(result) + "\n")
    except SrppodError as error:
        sys.exit(f"score_jsonl: {error}")
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
