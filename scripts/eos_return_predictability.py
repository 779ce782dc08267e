"""How much of an EOS-placed coherent reward could a critic predict, and from what?

Samples K responses per prompt from the SFT model (temperature 1, the PPO setting), scores them with
`srppo reward` (PT and SFT), and reports for the EOS-placed reward R of the responses that ended:
  - the share of Var(R) between prompts (one-way ANOVA, with the within-prompt noise of a K-sample
    mean removed): the most a critic can explain at a response's first token, where it knows only
    the prompt;
  - the squared correlation of R with the running sum of log-ratios after a quarter, half and three
    quarters of each response: what a critic that knew the coherent reward accumulated so far could
    explain later in the response.
The critic sees neither PT nor the running sum, so these are upper bounds on its explained variance.

    .venv/bin/python scripts/eos_return_predictability.py --pt PT --sft SFT --prompts P.jsonl [--samples 4]
"""
import argparse
import json
import pathlib
import subprocess
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(binary, *args, input=None):
    return subprocess.run([binary, *args], input=input, capture_output=True, text=True, check=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pt", required=True)
    parser.add_argument("--sft", required=True)
    parser.add_argument("--prompts", required=True, help="chat prompt records ({\"messages\": [...]}), as PPO reads them")
    parser.add_argument("--count", type=int, default=32, help="prompts used (the first ones)")
    parser.add_argument("--samples", type=int, default=4, help="responses per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--srppo", default=str(ROOT / ".build" / "release" / "srppo"))
    parser.add_argument("--output", help="JSON file for the figures")
    args = parser.parse_args()

    records = [json.loads(l) for l in open(args.prompts)][: args.count]
    lines = []
    for i, record in enumerate(records):
        messages = [m for m in record["messages"] if m["role"] != "assistant"]
        for k in range(args.samples):
            lines.append(json.dumps({"messages": messages, "seed": 1000 * i + k}))
    with tempfile.TemporaryDirectory() as tmp:
        prompts = pathlib.Path(tmp) / "prompts.jsonl"
        prompts.write_text("\n".join(lines) + "\n")
        generated = [json.loads(l) for l in run(args.srppo, "generate", "--model", args.sft, "--input", str(prompts),
                                                 "--max-new-tokens", str(args.max_new_tokens)).splitlines()]
        # The prompt ids as generate rendered them: re-render with tokenize (same template and rule).
        rendered = [json.loads(l)["ids"] for l in run(args.srppo, "tokenize", "--model", args.sft, "--jsonl",
                                                      input="".join(json.dumps({"messages": json.loads(l)["messages"],
                                                                                "add_generation_prompt": True}) + "\n"
                                                                    for l in lines)).splitlines()]
        pairs = "".join(json.dumps({"prompt_ids": p, "response_ids": g["ids"]}) + "\n" for p, g in zip(rendered, generated))
        scored = [json.loads(l) for l in run(args.srppo, "reward", "--pt", args.pt, "--sft", args.sft, input=pairs).splitlines()]

    ended = np.array([g["finish_reason"] == "eos" for g in generated])
    ratios = [np.float64(s["sft_logprobs"]) - np.float64(s["pt_logprobs"]) for s in scored]
    reward = np.array([r.sum() for r in ratios])
    prompt = np.repeat(np.arange(len(records)), args.samples)

    # Between-prompt share over the ended responses (prompts with at least two ended samples).
    groups = [reward[(prompt == p) & ended] for p in range(len(records))]
    groups = [g for g in groups if len(g) >= 2]
    values = np.concatenate(groups)
    within = np.mean([g.var(ddof=1) for g in groups])
    between = np.var([g.mean() for g in groups], ddof=1) - within / np.mean([len(g) for g in groups])
    share = max(between, 0) / values.var(ddof=1)

    running = {}
    for fraction in (0.25, 0.5, 0.75):
        partial = np.array([r[: max(1, int(fraction * len(r)))].sum() for r in ratios])
        running[str(fraction)] = float(np.corrcoef(partial[ended], reward[ended])[0, 1] ** 2)

    figures = {"responses": int(len(reward)), "ended": int(ended.sum()), "reward_mean": float(reward[ended].mean()),
               "reward_sd": float(reward[ended].std(ddof=1)), "between_prompt_share": float(share),
               "r2_running_sum": running, "samples_per_prompt": args.samples, "prompts": len(records)}
    print(json.dumps(figures, indent=1))
    if args.output:
        pathlib.Path(args.output).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
