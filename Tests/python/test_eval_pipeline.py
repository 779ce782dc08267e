"""`srppo eval --model`, `srppo pipeline` and `srppo report`, end to end on a tiny random model that
carries SmolLM2's tokenizer and chat template (so every text path is the real one, in seconds).

The pipeline's PPO stage runs `srppo ppo`; here a stub executable stands in for that one
subcommand (it copies the SFT model and writes PPOTrainer's metrics keys) and passes every other
subcommand to the real binary, so the test checks the plumbing, the flags the stage receives and
the report without PPO's cost."""
import json
import os
import re
import shutil
import stat
import statistics
import subprocess
import sys

import pytest

from conftest import ROOT, run_srppo
import hf_reference
from tiny_model import write_tiny_llama

CHATML_END = "<|im_end|>"


@pytest.fixture(scope="module")
def chat_tiny(smollm2, tmp_path_factory):
    """A 2-layer random LLaMA with SmolLM2's vocabulary, tokenizer.json and chat template."""
    folder = tmp_path_factory.mktemp("chat-tiny")
    write_tiny_llama(folder, vocab=49152, hidden=32, intermediate=64)
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = 512
    (folder / "config.json").write_text(json.dumps(config))
    meta = hf_reference.read_gguf_tokenizer(smollm2)
    hf_reference.tokenizer_from_metadata(meta).save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|im_start|>", "eos_token": CHATML_END, "pad_token": None,
        "chat_template": meta["tokenizer.chat_template"]}))
    return folder


@pytest.fixture(scope="module")
def tasks(srppo_bin, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tasks")
    run_srppo(srppo_bin, "data", "generate", "--out", str(folder), "--seed", "3", "--demos", "8", "--ppo-prompts", "4",
              "--eval", "6", "--held-out", "4")
    with open(folder / "heldout.jsonl", "w") as f:
        for line in open(folder / "eval_in_domain.jsonl"):
            row = json.loads(line)
            f.write(json.dumps({"messages": [{"role": "user", "content": row["prompt"]},
                                             {"role": "assistant", "content": row["reference"]}]}) + "\n")
    return folder


def jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_eval_model_equals_generate_score_and_stored_scoring(srppo_bin, chat_tiny, tasks, tmp_path):
    ood = tasks / "eval_ood.jsonl"
    run_srppo(srppo_bin, "eval", "--model", str(chat_tiny), "--set", str(ood), "--nll", str(tasks / "heldout.jsonl"),
              "--max-new-tokens", "20", "--seed", "5", "--output", str(tmp_path / "e.json"), "--details", str(tmp_path / "d.jsonl"))
    results = json.loads((tmp_path / "e.json").read_text())
    details = jsonl(tmp_path / "d.jsonl")
    rows = jsonl(ood)
    assert results["metadata"]["decoding"] == "greedy"
    assert results["metadata"]["seeds"] == "row i uses 5 + i"
    assert results["metadata"]["prompt_format"] == "chat"

    # The responses are what `srppo generate --greedy` gives for the prompt as one chat user turn.
    prompts = "".join(json.dumps({"messages": [{"role": "user", "content": r["prompt"]}]}) + "\n" for r in rows)
    generated = [json.loads(l) for l in run_srppo(srppo_bin, "generate", "--model", str(chat_tiny), "--greedy",
                                                  "--max-new-tokens", "20", input=prompts).stdout.splitlines()]
    assert [d["response"] for d in details] == [g["text"].removesuffix(CHATML_END) for g in generated]
    (ood_set,) = results["sets"]
    g = ood_set["generation"]
    assert g["mean_tokens"] == pytest.approx(sum(x["n"] for x in generated) / len(generated))
    assert g["truncation_rate"] == pytest.approx(sum(x["finish_reason"] == "length" for x in generated) / len(generated))
    assert g["eos_rate"] + g["truncation_rate"] == pytest.approx(1)
    assert g["first_seed"] == 5

    # Scoring the same responses from a file gives the same accuracies.
    stored = tmp_path / "stored.jsonl"
    stored.write_text("".join(json.dumps(dict(r, response=d["response"])) + "\n" for r, d in zip(rows, details)))
    run_srppo(srppo_bin, "eval", "--responses", str(stored), "--output", str(tmp_path / "s.json"))
    assert json.loads((tmp_path / "s.json").read_text())["sets"][0]["ifeval"] == ood_set["ifeval"]

    # Held-out NLL is minus the mean per-token log-probability `srppo score` gives the demonstrations.
    pairs = [{"messages": d["messages"][:1], "response": d["messages"][1]["content"]} for d in jsonl(tasks / "heldout.jsonl")]
    scored = [json.loads(l) for l in run_srppo(srppo_bin, "score", "--model", str(chat_tiny),
                                               input="".join(json.dumps(p) + "\n" for p in pairs)).stdout.splitlines()]
    (nll,) = results["nll"]
    assert nll["examples"] == 4
    assert nll["tokens"] == sum(s["n"] for s in scored)
    assert nll["mean_nll"] == pytest.approx(-sum(s["sum"] for s in scored) / nll["tokens"], rel=1e-5)


def test_eval_model_usage_and_runtime_errors(srppo_bin, chat_tiny, tasks, tmp_path):
    result = run_srppo(srppo_bin, "eval", "--model", str(chat_tiny), check=False)
    assert result.returncode == 2 and "--set" in result.stderr
    bare = write_tiny_llama(tmp_path / "bare")
    result = run_srppo(srppo_bin, "eval", "--model", str(bare), "--set", str(tasks / "eval_ood.jsonl"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("the model has no tokenizer, and evaluation works on text")


STUB = """#!{python}
# Stands in for `srppo ppo` (copies the SFT model, writes PPOTrainer's metrics keys); everything
# else goes to the real srppo.
import json, math, os, shutil, sys
real = {real!r}
args = sys.argv[1:]
if not args or args[0] != "ppo":
    os.execv(real, [real] + args)
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
opt = lambda name: args[args.index(name) + 1]
out, steps, seed = opt("--out"), int(opt("--steps")), int(opt("--seed"))
tokenwise = opt("--reward-placement") == "tokenwise"
os.makedirs(out, exist_ok=True)
json.dump({{"command": "ppo", "sft": opt("--sft")}}, open(os.path.join(out, "run-config.json"), "w"))
with open(os.path.join(out, "metrics.jsonl"), "w") as f:
    for s in range(1, steps + 1):
        f.write(json.dumps({{"step": s, "reward": s * (2 if tokenwise else 1) + seed, "kl_sft": 0.1 * s, "kl_pt": 1 + 0.2 * s,
                            "response_length": 20 + s, "eos_rate": 0.5 + 0.1 * s, "truncation_rate": 0.5 - 0.1 * s,
                            "value_loss": 1 / s, "explained_variance": 1 - 1 / s, "actor_trained": True}}) + "\\n")
shutil.copytree(opt("--sft"), os.path.join(out, "model"))
for i, arg in enumerate(args):
    if arg == "--save-policy-at":
        shutil.copytree(opt("--sft"), os.path.join(out, "policy-step-" + args[i + 1]))
"""


@pytest.fixture(scope="module")
def pipeline_run(srppo_bin, chat_tiny, tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    stub = work / "srppo-stub"
    stub.write_text(STUB.format(python=sys.executable, real=srppo_bin, log=str(work / "ppo-calls.jsonl")))
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    config = work / "pipeline-config.json"
    config.write_text(json.dumps({"in_domain_tasks": 4, "sft_batch_size": 4, "sft_args": ["--eval-every", "2"],
                                  "ppo_args": ["--max-new-tokens", "16"], "eval_max_new_tokens": 12}))
    out = work / "run"
    args = ["pipeline", "--model", str(chat_tiny), "--out", str(out), "--config", str(config), "--srppo", str(stub),
            "--demos", "12", "--ppo-prompts", "4", "--eval-tasks", "5", "--ppo-steps", "4", "--seeds", "1,2",
            "--placements", "eos,tokenwise", "--threads", "1"]
    first = run_srppo(srppo_bin, *args)
    return {"out": out, "work": work, "args": args, "first": first}


def test_pipeline_runs_every_stage_with_the_documented_flags(srppo_bin, pipeline_run, chat_tiny):
    out, work = pipeline_run["out"], pipeline_run["work"]
    stages = [json.loads(l)["stage"] for l in open(out / "stages.jsonl")]
    assert stages == ["data", "sft", "ppo-eos-seed1", "ppo-eos-seed2", "ppo-tokenwise-seed1", "ppo-tokenwise-seed2",
                      "eval-pt", "eval-sft", "eval-srppo-eos-seed1", "eval-srppo-eos-seed2",
                      "eval-srppo-tokenwise-seed1", "eval-srppo-tokenwise-seed2", "compare", "report"]
    calls = jsonl(work / "ppo-calls.jsonl")
    assert calls[0] == ["ppo", "--out", str(out / "ppo-eos-seed1"), "--pt", str(chat_tiny), "--sft", str(out / "sft" / "model"),
                        "--prompts", str(out / "data" / "sft_chat.jsonl"), "--prompts", str(out / "data" / "ppo_prompts_chat.jsonl"),
                        "--steps", "4", "--seed", "1", "--reward-placement", "eos", "--max-new-tokens", "16", "--threads", "1"]
    # SFT trained on the chat-format demonstrations, one epoch of 12 (minus the held-out one) in batches of 4.
    sft_config = json.loads((out / "sft" / "run-config.json").read_text())
    assert sft_config["data"].endswith("sft_chat.jsonl") and sft_config["sft"]["batchSize"] == 4
    chat = jsonl(out / "data" / "sft_chat.jsonl")
    assert len(chat) == 12 and [m["role"] for m in chat[0]["messages"]] == ["user", "assistant"]
    # Every model answered the same out-of-domain set.
    labels = sorted(p.stem for p in (out / "eval").glob("*.json"))
    assert labels == ["pt", "sft", "srppo-eos-seed1", "srppo-eos-seed2", "srppo-tokenwise-seed1", "srppo-tokenwise-seed2"]
    for label in labels:
        results = json.loads((out / "eval" / f"{label}.json").read_text())
        assert [s["name"] for s in results["sets"]] == ["eval_ood"] and results["sets"][0]["rows"] == 5
        assert results["sets"][0]["generation"]["mean_tokens"] <= 12
        assert results["nll"][0]["examples"] == 4
    # The stub copies SFT, so SRPPO answers exactly as SFT does.
    sft_rows = jsonl(out / "eval" / "sft.rows.jsonl")
    assert [r["response"] for r in jsonl(out / "eval" / "srppo-eos-seed1.rows.jsonl")] == [r["response"] for r in sft_rows]
    assert (out / "report.html").exists() and json.loads((out / "pipeline.json").read_text())["seeds"] == [1, 2]
    # SRPPO (a copy of SFT here) against SFT: every paired difference is 0, per seed and pooled.
    comparisons = json.loads((out / "comparison.json").read_text())
    assert {(c["placement"], c["variant"]) for c in comparisons} == {("eos", "seeds"), ("tokenwise", "seeds")}
    assert len(comparisons) == 2 * 4   # placements × accuracies of the one set
    for c in comparisons:
        r = c["result"]
        assert r["set"] == "eval_ood" and sorted(r["seeds"]) == ["1", "2"]
        assert r["pooled"]["mean_difference"] == 0 and r["pooled"]["verdict"] == "no difference" and r["pooled"]["tasks"] == 5


def test_pipeline_again_skips_finished_stages_and_refuses_other_settings(srppo_bin, pipeline_run):
    out, args = pipeline_run["out"], pipeline_run["args"]
    before = len(open(out / "stages.jsonl").readlines())
    run_srppo(srppo_bin, *args)
    stages = [json.loads(l)["stage"] for l in open(out / "stages.jsonl")]
    assert stages[before:] == ["compare", "report"]
    changed = [a if a != "4" else "5" for a in args]  # --ppo-steps 5
    result = run_srppo(srppo_bin, *changed, check=False)
    assert result.returncode == 1 and "was started with other settings" in result.stderr


def test_pipeline_sft_per_seed_trains_one_sft_per_seed_and_starts_each_ppo_from_it(srppo_bin, chat_tiny, tmp_path):
    stub = tmp_path / "srppo-stub"
    stub.write_text(STUB.format(python=sys.executable, real=srppo_bin, log=str(tmp_path / "ppo-calls.jsonl")))
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"in_domain_tasks": 3, "sft_batch_size": 4, "eval_max_new_tokens": 8}))
    out = tmp_path / "run"
    args = ["pipeline", "--model", str(chat_tiny), "--config", str(config), "--srppo", str(stub), "--demos", "8",
            "--ppo-prompts", "4", "--eval-tasks", "3", "--ppo-steps", "2", "--seeds", "4,7", "--placements", "eos", "--sft-per-seed",
            "--threads", "1"]
    run_srppo(srppo_bin, *args, "--out", str(out))
    stages = [json.loads(l)["stage"] for l in open(out / "stages.jsonl")]
    assert stages == ["data", "sft-seed4", "sft-seed7", "ppo-eos-seed4", "ppo-eos-seed7",
                      "eval-pt", "eval-sft-seed4", "eval-sft-seed7", "eval-srppo-eos-seed4", "eval-srppo-eos-seed7", "compare", "report"]
    for seed in (4, 7):
        assert json.loads((out / f"sft-seed{seed}" / "run-config.json").read_text())["sft"]["seed"] == seed
        assert not (out / f"sft-seed{seed}" / "checkpoints").exists()   # a finished run's checkpoints go
    assert [c[c.index("--sft") + 1] for c in jsonl(tmp_path / "ppo-calls.jsonl")] == [
        str(out / "sft-seed4" / "model"), str(out / "sft-seed7" / "model")]
    assert json.loads((out / "pipeline.json").read_text())["sft_per_seed"] is True
    # The report's results table: every model once, SFT over its seeds like the PPO runs.
    html = (out / "report.html").read_text()
    [results] = [t for t in re.findall(r"<table>(.*?)</table>", html) if "<th>seeds</th>" in t]
    rows = {cells[0]: cells for cells in (re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", results)) if cells}
    assert list(rows) == ["pt", "sft", "srppo-eos"]
    sft_runs = [json.loads((out / "eval" / f"sft-seed{seed}.json").read_text()) for seed in (4, 7)]
    strict = [100 * r["sets"][0]["ifeval"]["prompt_level"]["strict_accuracy"] for r in sft_runs]
    tokens = [r["sets"][0]["generation"]["mean_tokens"] for r in sft_runs]
    nll = [r["nll"][0]["mean_nll"] for r in sft_runs]
    assert rows["sft"][:4] == ["sft", "eval_ood", "2", f"{statistics.mean(strict):.1f} ± {statistics.stdev(strict):.1f}%"]
    assert rows["sft"][8] == f"{statistics.mean(tokens):.1f} ± {statistics.stdev(tokens):.1f}"
    assert rows["sft"][10] == f"{statistics.mean(nll):.3f} ± {statistics.stdev(nll):.3f}"
    assert rows["pt"][2] == "1" and "±" not in "".join(rows["pt"])
    # One daemon serves one SFT model, so the two do not go together.
    result = run_srppo(srppo_bin, *args, "--daemon", str(tmp_path / "none.sock"), "--out", str(tmp_path / "other"), check=False)
    assert result.returncode == 1 and "a daemon serves one" in result.stderr


def test_pipeline_data_scarcity_and_reward_sanity(srppo_bin, chat_tiny, tmp_path):
    stub = tmp_path / "srppo-stub"
    stub.write_text(STUB.format(python=sys.executable, real=srppo_bin, log=str(tmp_path / "ppo-calls.jsonl")))
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"in_domain_tasks": 3, "sft_batch_size": 4, "eval_max_new_tokens": 8,
                                  "scarcity_demos": [4, 8], "scarcity_ppo_steps": 1, "reward_sanity": True}))
    out = tmp_path / "run"
    run_srppo(srppo_bin, "pipeline", "--model", str(chat_tiny), "--config", str(config), "--srppo", str(stub), "--demos", "8",
              "--ppo-prompts", "4", "--eval-tasks", "3", "--ppo-steps", "2", "--seeds", "5", "--placements", "tokenwise,eos",
              "--threads", "1", "--out", str(out))
    stages = [json.loads(l)["stage"] for l in open(out / "stages.jsonl")]
    # demos8 is all 8 demonstrations: no second SFT (the shared one under its own label, evaluated
    # once), and no second PPO run (ppo-eos-seed5 saves its policy after the scarcity runs' step count).
    assert stages == ["data", "sft", "sft-demos4", "ppo-tokenwise-seed5", "ppo-eos-seed5", "ppo-eos-demos4",
                      "reward-sanity", "eval-pt", "eval-sft", "eval-sft-demos4", "eval-srppo-tokenwise-seed5",
                      "eval-srppo-eos-seed5", "eval-srppo-eos-demos4", "eval-srppo-eos-demos8", "compare", "report"]
    assert (out / "eval" / "sft-demos8.rows.jsonl").read_bytes() == (out / "eval" / "sft.rows.jsonl").read_bytes()
    log = (out / "pipeline.log").read_text()
    assert "eval-srppo-eos-demos8: " in log and str(out / "ppo-eos-seed5" / "policy-step-1") in log
    # The scarce SFT saw the first 4 demonstrations, with the first seed; its PPO run starts from it,
    # with the scarcity runs' own step count.
    assert jsonl(out / "data" / "sft_chat_demos4.jsonl") == jsonl(out / "data" / "sft_chat.jsonl")[:4]
    scarce = json.loads((out / "sft-demos4" / "run-config.json").read_text())
    assert scarce["data"].endswith("sft_chat_demos4.jsonl") and scarce["sft"]["seed"] == 5
    calls = jsonl(tmp_path / "ppo-calls.jsonl")
    assert [(c[c.index("--sft") + 1], c[c.index("--steps") + 1], c[c.index("--reward-placement") + 1],
             [c[i + 1] for i, a in enumerate(c) if a == "--save-policy-at"]) for c in calls] == [
        (str(out / "sft" / "model"), "2", "tokenwise", []), (str(out / "sft" / "model"), "2", "eos", ["1"]),
        (str(out / "sft-demos4" / "model"), "1", "eos", [])]
    assert json.loads((out / "eval" / "sft-demos8.json").read_text())["sets"][0]["rows"] == 3
    assert {(c["placement"], c["variant"]) for c in json.loads((out / "comparison.json").read_text())} == {
        ("eos", "seeds"), ("tokenwise", "seeds"), ("eos", "demos4"), ("eos", "demos8")}
    # Reward sanity: four responses per held-out demonstration, scored; a reference's reward is what
    # `srppo reward` gives the same pair.
    sanity = json.loads((out / "reward_sanity.json").read_text())
    assert [k["kind"] for k in sanity["kinds"]] == ["reference", "shuffled", "pt", "sft"] and all(k["count"] == 3 for k in sanity["kinds"])
    assert [(s["higher"], s["lower"]) for s in sanity["separations"]] == [("reference", "shuffled"), ("reference", "pt"), ("sft", "pt"),
                                                                         ("reference", "sft")]
    assert all(0 <= s["auroc"] <= 1 for s in sanity["separations"])
    held = jsonl(out / "data" / "heldout_chat.jsonl")
    pairs = "".join(json.dumps({"messages": h["messages"][:1], "response": h["messages"][1]["content"]}) + "\n" for h in held)
    rewards = [json.loads(l)["reward"] for l in run_srppo(srppo_bin, "reward", "--pt", str(chat_tiny), "--sft", str(out / "sft" / "model"),
                                                           input=pairs).stdout.splitlines()]
    references = [r["reward"] for r in sanity["rows"] if r["kind"] == "reference"]
    assert references == pytest.approx(rewards, rel=1e-6, abs=1e-6)
    # The report shows the comparison, the reward sanity check and the scarcity curve.
    html = (out / "report.html").read_text()
    for title in ("Does SRPPO beat SFT?", "Reward sanity", "Data scarcity", "Accuracy against demonstrations",
                  "Coherent reward, sorted, per kind"):
        assert title in html, title
    # The README's tables come from the same files (scripts/results_tables.py): its figures are theirs.
    tables = subprocess.run([sys.executable, str(ROOT / "scripts" / "results_tables.py"), str(out)], capture_output=True,
                            text=True, check=True).stdout
    ood = next(s for s in json.loads((out / "eval" / "srppo-eos-seed5.json").read_text())["sets"] if s["name"] == "eval_ood")
    row = next(line for line in tables.splitlines() if line.startswith("| SRPPO (EOS reward) (n=1) |"))
    assert row.split(" | ")[1] == f"{100 * ood['ifeval']['prompt_level']['strict_accuracy']:.1f}%"
    assert row.split(" | ")[5] == f"{ood['generation']['mean_tokens']:.1f}"
    for heading in ("**Out of domain**", "**SRPPO − SFT, out of domain**", "**Over PPO steps**",
                    "**Reward sanity**", "**Separation**", "**Data scarcity**", "**Stage minutes**"):
        assert heading in tables, heading
    assert sum(1 for line in tables.splitlines() if re.match(r"\| [48] \| ", line)) == 2   # one scarcity row per size


PROBE = """<script>
const charts = [...document.querySelectorAll("svg.chart")].map(svg => ({
  title: svg.querySelector("text.title").textContent,
  width: svg.getBoundingClientRect().width,
  lines: [...svg.querySelectorAll("polyline.series")].map(p => [p.dataset.series, p.getBBox().width, p.points.numberOfItems]),
}));
const tables = [...document.querySelectorAll("table")].map(t => [...t.querySelectorAll("tr")].map(r => [...r.cells].map(c => c.textContent)));
const pre = document.createElement("pre");
pre.id = "probe";
pre.textContent = JSON.stringify({charts, tables});
document.body.appendChild(pre);
</script>"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("chromium missing: scripts/setup.sh installs it")
    pytest.skip("chromium not installed (scripts/setup.sh installs it)")


def test_report_renders_every_plot_in_a_headless_browser(pipeline_run, tmp_path):
    browser = chromium()
    html = (pipeline_run["out"] / "report.html").read_text()
    assert "<script" not in html and "src=" not in html and "href=" not in html and "@import" not in html  # self-contained, static
    page = tmp_path / "probed.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    probe = json.loads(dom[start:dom.index("</pre>", start)].replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    charts = {c["title"]: c for c in probe["charts"]}
    assert set(charts) == {"SFT loss", "Coherent reward", "KL to SFT", "KL to PT", "Response length", "EOS and truncation rates",
                           "Value loss", "Explained variance", "Response length by placement", "Truncation rate by placement"}
    for chart in charts.values():
        assert chart["width"] > 400
        assert chart["lines"] and all(width > 100 for _, width, _ in chart["lines"]), chart
    assert [n for n, _, _ in charts["SFT loss"]["lines"]] == ["train", "held out"]
    assert len(charts["Coherent reward"]["lines"]) == 4 and all(points == 4 for _, _, points in charts["Coherent reward"]["lines"])
    assert len(charts["KL to SFT"]["lines"]) == 4 and len(charts["EOS and truncation rates"]["lines"]) == 8
    # Length per placement: the mean over seeds 1 and 2 of the stub's 20 + step.
    assert [(n, points) for n, _, points in charts["Response length by placement"]["lines"]] == [("eos", 4), ("tokenwise", 4)]
    comparison = next(t for t in probe["tables"] if t[0][:2] == ["placement", "runs"])
    assert [row[:4] + row[5:] for row in comparison[1:3]] == [["eos", "seeds", "eval_ood", "prompt_strict", "+0.0 [+0.0, +0.0]", "no difference"],
                                                              ["eos", "seeds", "eval_ood", "prompt_loose", "+0.0 [+0.0, +0.0]", "no difference"]]
    evaluation, nll, seeds = probe["tables"][:3]
    assert [row[0] for row in evaluation[1:]] == ["pt", "sft", "srppo-eos-seed1", "srppo-eos-seed2",
                                                  "srppo-tokenwise-seed1", "srppo-tokenwise-seed2"]
    assert [row[:3] for row in seeds[1:]] == [["pt", "eval_ood", "1"], ["sft", "eval_ood", "1"], ["srppo-eos", "eval_ood", "2"],
                                              ["srppo-tokenwise", "eval_ood", "2"]]
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=1280,2400",
                    (pipeline_run["out"] / "report.html").as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_pipeline_with_the_real_ppo_stage(srppo_bin, chat_tiny, tmp_path):
    """The same plumbing with `srppo ppo` itself."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "in_domain_tasks": 3, "sft_batch_size": 4, "eval_max_new_tokens": 8,
        "ppo_args": ["--prompts-per-step", "2", "--samples-per-prompt", "2", "--max-new-tokens", "8",
                     "--mini-batch-size", "4", "--epochs", "1"]}))
    out = tmp_path / "run"
    run_srppo(srppo_bin, "pipeline", "--model", str(chat_tiny), "--out", str(out), "--config", str(config), "--demos", "8",
              "--ppo-prompts", "4", "--eval-tasks", "3", "--ppo-steps", "2", "--seeds", "1", "--placements", "eos,tokenwise",
              "--threads", "1", "--keep-checkpoints")
    # --keep-checkpoints: the finished runs keep theirs (by default removed, see the sft-per-seed test).
    assert sorted(p.name for p in (out / "sft" / "checkpoints").iterdir()) and sorted(
        p.name for p in (out / "ppo-eos-seed1" / "checkpoints").iterdir()) == ["step-000002"]
    for placement in ("eos", "tokenwise"):
        metrics = jsonl(out / f"ppo-{placement}-seed1" / "metrics.jsonl")
        assert [m["step"] for m in metrics] == [1, 2]
        assert all(k in metrics[0] for k in ("reward", "kl_sft", "kl_pt", "response_length", "eos_rate", "truncation_rate",
                                             "value_loss", "explained_variance"))
        assert (out / f"ppo-{placement}-seed1" / "model" / "config.json").exists()
    assert sorted(p.stem for p in (out / "eval").glob("*.json")) == ["pt", "sft", "srppo-eos-seed1", "srppo-tokenwise-seed1"]
    html = (out / "report.html").read_text()
    # SFT loss + 7 PPO plots + 2 per-placement plots; 2 SFT lines, 2 per PPO plot (4 for EOS and truncation), explained
    # variance possibly NaN, 2 per per-placement plot
    assert html.count("<svg") == 10 and 20 <= html.count('class="series"') <= 22
