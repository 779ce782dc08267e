#!/usr/bin/env python3
"""Prints the README's Results tables (Markdown) from a pipeline folder or its copy under results/:
eval/*.json (`srppo eval`), comparison.json (`srppo compare`), reward_sanity.json
(`srppo reward-sanity`), ppo-*/metrics.jsonl and stages.jsonl. Standard library only.

    python3 scripts/results_tables.py results/medium
"""
import json
import pathlib
import re
import statistics
import sys

METRICS = [("prompt strict", "prompt_level", "strict_accuracy"), ("prompt loose", "prompt_level", "loose_accuracy"),
           ("instr strict", "instruction_level", "strict_accuracy"), ("instr loose", "instruction_level", "loose_accuracy")]
COMPARED = ["prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose"]
SETS = {"eval_ood": "out of domain", "eval_in_domain": "in domain"}
PLACEMENTS = {"eos": "SRPPO (EOS reward)", "tokenwise": "SRPPO (token-wise reward)"}


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def spread(values, digits=1, unit=""):
    """mean ± sample standard deviation (the value alone for one)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}{unit}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}{unit}"


def evaluation_row(result, set_name):
    """The figures of one model on one set (accuracies in %), or None when it did not answer that set."""
    found = [s for s in result["sets"] if s["name"] == set_name]
    if not found:
        return None
    s = found[0]
    row = {name: 100 * s["ifeval"][level][key] for name, level, key in METRICS}
    row["mean tokens"] = s["generation"]["mean_tokens"]
    row["truncated"] = 100 * s["generation"]["truncation_rate"]
    row["held-out NLL"] = result["nll"][0]["mean_nll"] if result.get("nll") else float("nan")
    return row


def evaluations(run):
    return {path.name[:-len(".json")]: json.loads(path.read_text()) for path in sorted((run / "eval").glob("*.json"))}


def model_groups(labels):
    """(row name, [labels]) for PT, SFT and each placement over the seeds, in that order."""
    groups = [("PT", ["pt"])] if "pt" in labels else []
    seeded = lambda prefix: sorted(l for l in labels if re.fullmatch(prefix + r"seed\d+", l))
    groups.append(("SFT", seeded("sft-") or [l for l in labels if l == "sft"]))
    for placement, name in PLACEMENTS.items():
        if seeded(f"srppo-{placement}-"):
            groups.append((name, seeded(f"srppo-{placement}-")))
    return [(name, members) for name, members in groups if members]


def results_tables(evals):
    out = []
    columns = [m[0] for m in METRICS] + ["mean tokens", "truncated", "held-out NLL"]
    for set_name, title in SETS.items():
        rows = []
        for name, members in model_groups(evals):
            figures = [evaluation_row(evals[m], set_name) for m in members]
            figures = [f for f in figures if f]
            if not figures:
                continue
            cells = [spread([f[c] for f in figures], 1, "%") for c in columns[:4]]
            cells += [spread([f["mean tokens"] for f in figures], 1), spread([f["truncated"] for f in figures], 1, "%"),
                      spread([f["held-out NLL"] for f in figures], 3)]
            rows.append([f"{name} (n={len(figures)})"] + cells)
        if rows:
            tasks = evals["pt"]["sets"][[s["name"] for s in evals["pt"]["sets"]].index(set_name)]["ifeval"]["prompt_level"]["total"] \
                if "pt" in evals else "?"
            out.append(f"**{title.capitalize()}** ({tasks} tasks; mean ± sd over seeds):\n\n" + table(["model"] + columns, rows))
    return out


def interval(result):
    return f"{100 * result['mean_difference']:+.1f} [{100 * result['lower']:+.1f}, {100 * result['upper']:+.1f}]"


def comparison_tables(comparison):
    out = []
    for set_name, title in SETS.items():
        rows = []
        for placement, name in PLACEMENTS.items():
            entries = {e["result"]["metric"]: e["result"] for e in comparison
                       if e["placement"] == placement and e["variant"] == "seeds" and e["result"]["set"] == set_name}
            if not entries:
                continue
            pooled = [f"{interval(entries[m]['pooled'])} **{entries[m]['pooled']['verdict']}**" for m in COMPARED]
            seeds = sorted(entries[COMPARED[0]]["seeds"], key=int)
            per_seed = [" / ".join(f"{100 * entries[m]['seeds'][s]['mean_difference']:+.1f}" for s in seeds) for m in COMPARED]
            rows.append([f"{name}, pooled"] + pooled)
            rows.append([f"{name}, seeds {' / '.join(seeds)}"] + per_seed)
        if rows:
            out.append(f"**SRPPO − SFT, {title}** (points; pooled: mean over tasks of the seeds' mean difference, 95% "
                       "bootstrap interval over tasks):\n\n" + table([""] + [m.replace("_", " ") for m in COMPARED], rows))
    return out


def metrics_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def length_table(run):
    runs = {placement: [metrics_lines(p) for p in sorted(run.glob(f"ppo-{placement}-seed*/metrics.jsonl"))] for placement in PLACEMENTS}
    runs = {placement: per_run for placement, per_run in runs.items() if per_run}
    if not runs:
        return []
    # Steps every run has logged (a run still going has fewer).
    last = min(len(m) for per_run in runs.values() for m in per_run)
    steps_shown = sorted({1, 5, 10, 20, 30, 40, last} & set(range(1, last + 1)))
    rows = []
    for placement, per_run in runs.items():
        name = PLACEMENTS[placement]
        for key, label, scale, digits in [("response_length", "length (tokens)", 1, 1), ("truncation_rate", "truncated %", 100, 0),
                                          ("reward", "reward", 1, 1), ("kl_sft", "KL to SFT", 1, 2),
                                          ("explained_variance", "explained variance", 1, 2)]:
            if key not in per_run[0][0]:
                continue
            cells = [f"{statistics.mean(scale * m[s - 1][key] for m in per_run):.{digits}f}" for s in steps_shown]
            rows.append([f"{name}: {label}"] + cells)
    if not rows:
        return []
    return ["**Over PPO steps** (mean over seeds):\n\n" + table(["step"] + [str(s) for s in steps_shown], rows)]


def sanity_table(run):
    path = run / "reward_sanity.json"
    if not path.exists():
        return []
    sanity = json.loads(path.read_text())
    rows = [[k["kind"], k["count"], f"{k['mean_reward']:.2f}", f"{k['mean_reward_per_token']:.3f}", f"{k['mean_tokens']:.1f}",
             f"{100 * k['ended_rate']:.0f}%"] for k in sanity["kinds"]]
    separation = [[f"{s['higher']} > {s['lower']}", f"{s['auroc']:.3f}"] for s in sanity["separations"]]
    return ["**Reward sanity** (coherent reward log p_SFT − log p_PT of held-out responses, summed):\n\n"
            + table(["responses", "n", "mean reward", "per token", "mean tokens", "ended"], rows),
            "**Separation** (AUROC: the chance that a response of the first kind gets the higher reward):\n\n"
            + table(["pair", "AUROC"], separation)]


def scarcity_table(evals, comparison):
    rows = []
    sizes = sorted({int(m[1]) for l in evals if (m := re.fullmatch(r"sft-demos(\d+)", l))})
    for n in sizes:
        sft, srppo = evals.get(f"sft-demos{n}"), next((evals[l] for l in evals if re.fullmatch(rf"srppo-\w+-demos{n}", l)), None)
        if not sft or not srppo:
            continue
        entries = {e["result"]["metric"]: e["result"]["pooled"] for e in comparison
                   if e["variant"] == f"demos{n}" and e["result"]["set"] == "eval_ood"}
        a, b = evaluation_row(sft, "eval_ood"), evaluation_row(srppo, "eval_ood")
        rows.append([n, f"{a['prompt strict']:.1f}%", f"{b['prompt strict']:.1f}%",
                     f"{interval(entries['prompt_strict'])} {entries['prompt_strict']['verdict']}",
                     f"{a['instr strict']:.1f}%", f"{b['instr strict']:.1f}%",
                     f"{interval(entries['instruction_strict'])} {entries['instruction_strict']['verdict']}"])
    if not rows:
        return []
    return ["**Data scarcity** (seed 1, out of domain, EOS reward):\n\n" + table(
        ["demos", "SFT prompt strict", "SRPPO prompt strict", "difference [95% CI]", "SFT instr strict", "SRPPO instr strict",
         "difference [95% CI]"], rows)]


def stage_table(run):
    path = run / "stages.jsonl"
    if not path.exists():
        return []
    groups = {}
    for stage in metrics_lines(path):
        name = stage["stage"]
        group = ("PPO, 50-step runs" if re.fullmatch(r"ppo-\w+-seed\d+", name) else "PPO, data scarcity" if name.startswith("ppo-")
                 else "SFT" if name.startswith("sft") else "evaluation" if name.startswith("eval-") else name)
        count, seconds = groups.get(group, (0, 0.0))
        groups[group] = (count + 1, seconds + stage["seconds"])
    rows = [[g, c, f"{s / 60:.1f}"] for g, (c, s) in groups.items()]
    rows.append(["total", sum(c for c, _ in groups.values()), f"{sum(s for _, s in groups.values()) / 60:.1f}"])
    return ["**Stage minutes** (stages.jsonl):\n\n" + table(["stages", "runs", "minutes"], rows)]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: results_tables.py PIPELINE_FOLDER")
    run = pathlib.Path(sys.argv[1])
    evals = evaluations(run) if (run / "eval").is_dir() else {}
    comparison = json.loads((run / "comparison.json").read_text()) if (run / "comparison.json").exists() else []
    parts = results_tables(evals) + comparison_tables(comparison) + length_table(run) + sanity_table(run)
    parts += scarcity_table(evals, comparison) + stage_table(run)
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
