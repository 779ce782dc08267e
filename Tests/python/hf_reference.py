"""Hugging Face reference tokenizers for the parity tests.

A GGUF file carries no tokenizer.json, only llama.cpp's metadata (`tokenizer.ggml.*`). This module
rebuilds the Hugging Face tokenizer from that metadata the way transformers' GGUF loader does for
byte-level ("gpt2") files: a BPE model over the file's tokens and merges, every CONTROL token (type 3)
added as a special token that is never normalized, the byte-level decoder, and the pre-tokenizer
chosen by `tokenizer.ggml.pre`.

One deliberate difference: transformers has no entry for `smollm` and would fall back to GPT-2's
regex, which keeps runs of digits together. SmolLM2's own tokenizer.json (and llama.cpp's `smollm`
pre-tokenizer) split every digit on its own, so this helper uses that: the reference is the
tokenizer the model was trained with.

Chat templates are rendered as transformers renders them: a sandboxed jinja2 environment with
trim_blocks, lstrip_blocks and the loop-controls extension.
"""
import json

import jinja2
import jinja2.sandbox
from gguf import GGUFReader
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CONTROL = 3
USER_DEFINED = 4


def _split_then_bytes(pattern):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def pre_tokenizer_for(name):
    """(pre_tokenizer, normalizer, ignore_merges) of the model family llama.cpp calls `name`."""
    if name in ("gpt-2", "gpt2", "default"):
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), None, False
    if name in ("smollm", "starcoder", "refact"):
        return pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]), None, False
    if name in ("llama-bpe", "llama3", "llama-v3"):
        return _split_then_bytes(LLAMA3_PATTERN), None, True
    if name == "qwen2":
        return _split_then_bytes(QWEN2_PATTERN), normalizers.NFC(), False
    raise ValueError(f"no reference pre-tokenizer for {name!r}")


def read_gguf_tokenizer(path):
    """The tokenizer metadata of a GGUF file as plain Python values."""
    reader = GGUFReader(path)
    meta = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            meta[key] = field.contents()
    return meta


def tokenizer_from_metadata(meta):
    """A `tokenizers.Tokenizer` equal to the one the GGUF metadata describes."""
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError("only byte-level BPE ('gpt2') tokenizers are rebuilt")
    tokens = meta["tokenizer.ggml.tokens"]
    types = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = [tuple(m.split(" ")) for m in meta["tokenizer.ggml.merges"]]
    pre, normalizer, ignore_merges = pre_tokenizer_for(meta.get("tokenizer.ggml.pre", "default"))
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(BPE(vocab, merges, ignore_merges=ignore_merges))
    tokenizer.pre_tokenizer = pre
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([
        AddedToken(t, normalized=False, special=True) for t, k in zip(tokens, types) if k == CONTROL
    ])
    user = [AddedToken(t, normalized=False, special=False) for t, k in zip(tokens, types) if k == USER_DEFINED]
    if user:
        tokenizer.add_tokens(user)
    return tokenizer


def tokenizer_from_gguf(path):
    return tokenizer_from_metadata(read_gguf_tokenizer(path))


def special_token_text(meta, key):
    index = meta.get(f"tokenizer.ggml.{key}")
    return None if index is None else meta["tokenizer.ggml.tokens"][index]


def render_chat(template, messages, add_generation_prompt, bos_token="", eos_token=""):
    """Renders a chat template string exactly as transformers' apply_chat_template does."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt,
        bos_token=bos_token, eos_token=eos_token)


def write_tokenizer_gguf(path, meta, architecture="llama"):
    """A GGUF file holding only tokenizer metadata (no tensors), for tokenizer tests."""
    import gguf

    writer = gguf.GGUFWriter(path, architecture)
    for key, value in meta.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
        else:
            writer.add_array(key, list(value))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
