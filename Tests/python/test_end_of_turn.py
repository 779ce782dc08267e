"""Where a response ends, end to end, for a chat model whose EOS is not its end-of-turn token (the
paper's setting: Qwen2.5 or LLaMA-3 *base* models, where SFT on chat data teaches the template's
end-of-turn and EOS stays another token).

The model carries SmolLM2's tokenizer and ChatML template, with EOS = <|endoftext|> (id 0) and the
template's end-of-turn <|im_end|> (id 2). Its weights make <|im_end|> likely after every token
(about 0.3 at temperature 1, the arg-max when greedy) and <|endoftext|> practically never, so a
command that stops at EOS alone writes to its length limit and calls every response cut off, while
the one rule (EOS + the chat template's end-of-turn) ends them at <|im_end|>."""
import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import run_srppo
import hf_reference
from srppod_harness import Daemon, score
from tiny_model import write_tiny_llama

END_OF_TEXT, IM_END = 0, 2


@pytest.fixture(scope="module")
def base_chat_model(smollm2, tmp_path_factory):
    folder = tmp_path_factory.mktemp("base-chat")
    write_tiny_llama(folder, vocab=49152, hidden=32, intermediate=64)
    config = json.loads((folder / "config.json").read_text())
    config.update(max_position_embeddings=512, eos_token_id=END_OF_TEXT)
    (folder / "config.json").write_text(json.dumps(config))
    # Residual stream = the token's embedding (attention and MLP write nothing); every embedding has
    # 1 in column 0, so after the final norm h[0] ≈ 5.5 for any input, and the tied head gives
    # <|im_end|> (column 0 = 2.8) a logit ≈ 10 above the rest.
    tensors = load_file(str(folder / "model.safetensors"))
    for name in tensors:
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            tensors[name] = np.zeros_like(tensors[name])
    embedding = tensors["model.embed_tokens.weight"]
    embedding[:, 0] = 1.0
    embedding[IM_END, 0] = 2.8
    embedding[END_OF_TEXT, 0] = -2.0
    save_file(tensors, str(folder / "model.safetensors"))
    meta = hf_reference.read_gguf_tokenizer(smollm2)
    hf_reference.tokenizer_from_metadata(meta).save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|im_start|>", "eos_token": "<|endoftext|>", "pad_token": None,
        "chat_template": meta["tokenizer.chat_template"]}))
    return folder


def jsonl(path):
    return [json.loads(line) for line in open(path)]


def chat_prompts(path, count):
    with open(path, "w") as f:
        for i in range(count):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"Question {i}: say something."}]}) + "\n")
    return path


def test_generate_and_reward_stop_at_the_end_of_turn_token(srppo_bin, base_chat_model, tmp_path):
    prompts = chat_prompts(tmp_path / "prompts.jsonl", 8)
    out = run_srppo(srppo_bin, "generate", "--model", str(base_chat_model), "--input", str(prompts),
                    "--max-new-tokens", "24").stdout
    generated = [json.loads(line) for line in out.splitlines()]
    assert all(g["finish_reason"] == "eos" and g["ids"][-1] == IM_END for g in generated), generated
    assert all(IM_END not in g["ids"][:-1] for g in generated)
    # --ignore-eos ignores both end tokens.
    ignoring = [json.loads(l) for l in run_srppo(srppo_bin, "generate", "--model", str(base_chat_model), "--input", str(prompts),
                                                  "--max-new-tokens", "24", "--ignore-eos").stdout.splitlines()]
    assert all(g["finish_reason"] == "length" and g["n"] == 24 for g in ignoring)

    pairs = "".join(json.dumps({"prompt_ids": [1, 9690], "response_ids": ids}) + "\n"
                    for ids in ([5, 6, IM_END], [5, 6, END_OF_TEXT], [5, 6, 7]))
    model = str(base_chat_model)
    rewards = [json.loads(l) for l in run_srppo(srppo_bin, "reward", "--pt", model, "--sft", model, input=pairs).stdout.splitlines()]
    assert [r["ends_with_eos"] for r in rewards] == [True, True, False]


def test_srppod_counts_end_of_turn_as_ended(base_chat_model, tmp_path):
    path = str(tmp_path / "http.sock")
    daemon = Daemon(base_chat_model, base_chat_model, socket_path=path)
    try:
        results = score(path, [{"prompt_ids": [1, 9690], "response_ids": ids}
                               for ids in ([5, 6, IM_END], [5, 6, END_OF_TEXT], [5, 6, 7])])["results"]
        assert [r["truncated"] for r in results] == [False, False, True]
    finally:
        daemon.stop()


def test_ppo_and_eval_end_responses_at_the_end_of_turn_token(srppo_bin, base_chat_model, tmp_path):
    prompts = chat_prompts(tmp_path / "prompts.jsonl", 8)
    model = str(base_chat_model)
    run_srppo(srppo_bin, "ppo", "--pt", model, "--sft", model, "--prompts", str(prompts), "--out", str(tmp_path / "ppo"),
              "--steps", "2", "--prompts-per-step", "2", "--samples-per-prompt", "4", "--max-new-tokens", "16",
              "--mini-batch-size", "4", "--threads", "2")
    metrics = jsonl(tmp_path / "ppo" / "metrics.jsonl")
    assert len(metrics) == 2
    for m in metrics:
        # P(no <|im_end|> in 16 tokens) ≈ 0.7^16: every response ends, well before the limit.
        assert m["eos_rate"] == 1 and m["truncation_rate"] == 0, m
        assert m["response_length"] < 8, m
        assert m["reward"] == 0  # PT = SFT

    tasks = tmp_path / "tasks.jsonl"
    with open(tasks, "w") as f:
        for i in range(4):
            f.write(json.dumps({"key": i, "prompt": f"Write about topic {i}.", "instruction_id_list": ["punctuation:no_comma"],
                                "kwargs": [{}]}) + "\n")
    run_srppo(srppo_bin, "eval", "--model", model, "--set", str(tasks), "--max-new-tokens", "32", "--output", str(tmp_path / "e.json"))
    generation = json.loads((tmp_path / "e.json").read_text())["sets"][0]["generation"]
    assert generation["eos_rate"] == 1 and generation["truncation_rate"] == 0, generation
    assert generation["mean_tokens"] == 1, generation   # greedy: <|im_end|> at once
