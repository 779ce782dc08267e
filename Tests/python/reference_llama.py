"""Independent float64 NumPy implementation of a LLaMA-family forward pass, reading GGUF files
through the `gguf` PyPI package.

It deliberately follows llama.cpp's conventions rather than the engine's: weights stay in GGUF row
order and RoPE rotates adjacent pairs (2i, 2i+1), which is what llama.cpp's q/k row permutation
encodes. Agreement with the engine (which un-permutes to Hugging Face order and rotates halves)
therefore checks the permutation as well as the arithmetic.
"""
from __future__ import annotations

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


class GGUFLlama:
    def __init__(self, path: str):
        reader = GGUFReader(path)
        self.meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.")}
        arch = self.meta["general.architecture"]
        self.n_layers = int(self.meta[f"{arch}.block_count"])
        self.d = int(self.meta[f"{arch}.embedding_length"])
        self.n_heads = int(self.meta[f"{arch}.attention.head_count"])
        self.n_kv = int(self.meta.get(f"{arch}.attention.head_count_kv", self.n_heads))
        self.head_dim = self.d // self.n_heads
        self.theta = float(self.meta.get(f"{arch}.rope.freq_base", 10000.0))
        self.eps = float(self.meta[f"{arch}.attention.layer_norm_rms_epsilon"])
        self.adjacent_rope = arch == "llama"
        self.w = {}
        for t in reader.tensors:
            values = dequantize(t.data, t.tensor_type).astype(np.float64)
            self.w[t.name] = values.reshape([int(x) for x in reversed(t.shape)] if values.ndim == 1 and len(t.shape) > 1 else values.shape)
        self.head = self.w.get("output.weight", self.w["token_embd.weight"])

    def _rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def _rope(self, x, n_heads):
        T = x.shape[0]
        e = self.head_dim
        x = x.reshape(T, n_heads, e).copy()
        inv = 1.0 / self.theta ** (np.arange(0, e, 2, dtype=np.float64) / e)
        ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        if self.adjacent_rope:
            a, b = x[..., 0::2].copy(), x[..., 1::2].copy()
            x[..., 0::2] = a * c - b * s
            x[..., 1::2] = b * c + a * s
        else:
            a, b = x[..., : e // 2].copy(), x[..., e // 2 :].copy()
            x[..., : e // 2] = a * c - b * s
            x[..., e // 2 :] = b * c + a * s
        return x.reshape(T, n_heads * e)

    def log_probs(self, tokens, first_scored):
        """log p(tokens[i] | tokens[:i]) for i in first_scored..len(tokens)-1."""
        rows = self.next_token_log_probs(tokens, first_scored)
        return rows[np.arange(len(rows)), np.asarray(tokens)[first_scored:]]

    def next_token_log_probs(self, tokens, first_scored):
        """log p(· | tokens[:i]) over the vocabulary, one row for each i in first_scored..len(tokens)-1."""
        W = self.w
        T = len(tokens)
        x = W["token_embd.weight"][np.asarray(tokens)]
        mask = np.triu(np.full((T, T), -np.inf), k=1)
        e, group = self.head_dim, self.n_heads // self.n_kv
        for i in range(self.n_layers):
            p = f"blk.{i}."
            h = self._rms(x, W[p + "attn_norm.weight"])
            q = h @ W[p + "attn_q.weight"].T + W.get(p + "attn_q.bias", 0)
            k = h @ W[p + "attn_k.weight"].T + W.get(p + "attn_k.bias", 0)
            v = h @ W[p + "attn_v.weight"].T + W.get(p + "attn_v.bias", 0)
            q, k = self._rope(q, self.n_heads), self._rope(k, self.n_kv)
            out = np.empty_like(q)
            for hd in range(self.n_heads):
                g = hd // group
                qh, kh, vh = q[:, hd * e:(hd + 1) * e], k[:, g * e:(g + 1) * e], v[:, g * e:(g + 1) * e]
                s = qh @ kh.T / np.sqrt(e) + mask
                s = np.exp(s - s.max(axis=1, keepdims=True))
                s /= s.sum(axis=1, keepdims=True)
                out[:, hd * e:(hd + 1) * e] = s @ vh
            x = x + out @ W[p + "attn_output.weight"].T + W.get(p + "attn_output.bias", 0)
            h = self._rms(x, W[p + "ffn_norm.weight"])
            gate = h @ W[p + "ffn_gate.weight"].T
            up = h @ W[p + "ffn_up.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ W[p + "ffn_down.weight"].T
        rows = np.arange(first_scored - 1, T - 1)
        hidden = self._rms(x[rows], W["output_norm.weight"])
        logits = hidden @ self.head.T
        m = logits.max(axis=1, keepdims=True)
        return logits - (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))
