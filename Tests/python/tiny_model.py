"""Writes a tiny random LLaMA model in the Hugging Face layout (config.json + model.safetensors),
with NumPy and the `safetensors` package, for end-to-end tests of the commands."""
import json
import pathlib

import numpy as np
from safetensors.numpy import save_file


def write_tiny_llama(folder, vocab=48, hidden=32, intermediate=64, layers=2, heads=4, kv_heads=2, seed=0):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads
    tensors = {"model.embed_tokens.weight": rng.normal(0, 0.05, (vocab, hidden)), "model.norm.weight": np.ones(hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors.update({
            p + "input_layernorm.weight": np.ones(hidden),
            p + "post_attention_layernorm.weight": np.ones(hidden),
            p + "self_attn.q_proj.weight": rng.normal(0, 0.05, (heads * head_dim, hidden)),
            p + "self_attn.k_proj.weight": rng.normal(0, 0.05, (kv_heads * head_dim, hidden)),
            p + "self_attn.v_proj.weight": rng.normal(0, 0.05, (kv_heads * head_dim, hidden)),
            p + "self_attn.o_proj.weight": rng.normal(0, 0.05, (hidden, heads * head_dim)),
            p + "mlp.gate_proj.weight": rng.normal(0, 0.05, (intermediate, hidden)),
            p + "mlp.up_proj.weight": rng.normal(0, 0.05, (intermediate, hidden)),
            p + "mlp.down_proj.weight": rng.normal(0, 0.05, (hidden, intermediate)),
        })
    save_file({k: v.astype(np.float32) for k, v in tensors.items()}, str(folder / "model.safetensors"))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": hidden,
        "intermediate_size": intermediate, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_reversal_demos(path, count, vocab=48, seed=0):
    """Demonstrations of a learnable task: the response is the prompt's tokens reversed, then EOS."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(count):
            body = [int(x) for x in rng.integers(3, vocab, 4)]
            f.write(json.dumps({"prompt_ids": [1] + body, "response_ids": body[::-1] + [2]}) + "\n")
    return path
