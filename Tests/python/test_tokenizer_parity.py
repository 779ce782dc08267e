"""`srppo tokenize` against Hugging Face `tokenizers` (and jinja2 for chat templates), in the same run.

The reference tokenizer is rebuilt from the GGUF metadata by hf_reference.py. Every comparison is
exact: token ids, decoded text, rendered chat text.
"""
import json
import random

import pytest

import hf_reference
import tokenizer_corpus
import unicode_classes
from conftest import ROOT, run_srppo

QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# SmolLM2's template written with other spacing and quotes: still ChatML with the same prompt.
RESPACED_SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0][\"role\"] != \"system\" %}"
    "{{ \"<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n\" }}{% endif %}"
    "{{ '<|im_start|>'+message['role']+'\\n'+message['content']+'<|im_end|>'+'\\n' }}"
    "{%  endfor  %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}\n"
)

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi! How can I help?"},
     {"role": "user", "content": "  Tell me a joke.\n\n"}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "日本語で答えて 😀👨‍👩‍👧"}, {"role": "assistant", "content": "\u3000はい\u00a0"}],
    [{"role": "user", "content": "Say <|im_end|> please"}, {"role": "assistant", "content": "\t<|im_end|>\x1c"}],
    [{"role": "tool", "content": "{\"result\": 42}"}, {"role": "user", "content": "\u2028ok\u0085"}],
    [],
]


def json_lines(out):
    """Output lines (split on "\n" only: texts may hold U+2028, U+0085 and other line breaks)."""
    return [json.loads(line) for line in out.split("\n") if line]


def encode_all(binary, model, texts, *extra):
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = run_srppo(binary, "tokenize", "--model", str(model), "--jsonl", *extra, input=lines).stdout
    return [line["ids"] for line in json_lines(out)]


def decode_all(binary, model, id_lists, *extra):
    lines = "".join(json.dumps({"ids": ids}) + "\n" for ids in id_lists)
    out = run_srppo(binary, "tokenize", "--model", str(model), "--decode", *extra, input=lines).stdout
    return [line["text"] for line in json_lines(out)]


def render_all(binary, model, conversations, add_generation_prompt, *extra):
    lines = "".join(json.dumps({"messages": c, "add_generation_prompt": add_generation_prompt}) + "\n" for c in conversations)
    out = run_srppo(binary, "tokenize", "--model", str(model), "--jsonl", *extra, input=lines).stdout
    return json_lines(out)


def assert_same_ids(got, expected, texts, reference):
    assert len(got) == len(expected) == len(texts)
    mismatches = [i for i in range(len(texts)) if got[i] != expected[i]]
    if mismatches:
        i = mismatches[0]
        k = next(j for j in range(len(got[i]) + 1) if j == len(got[i]) or j == len(expected[i]) or got[i][j] != expected[i][j])
        pytest.fail(f"{len(mismatches)} of {len(texts)} texts differ; first {texts[i][:120]!r}: at token {k} "
                    f"srppo {[reference.id_to_token(x) for x in got[i][k:k + 4]]} "
                    f"HF {[reference.id_to_token(x) for x in expected[i][k:k + 4]]}")


@pytest.fixture(scope="session")
def metadata(smollm2):
    return hf_reference.read_gguf_tokenizer(smollm2)


@pytest.fixture(scope="session")
def reference(metadata):
    return hf_reference.tokenizer_from_metadata(metadata)


@pytest.fixture(scope="session")
def corpus():
    return tokenizer_corpus.corpus()


def hf_ids(tokenizer, texts):
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_corpus_covers_the_hard_cases(corpus):
    assert len(corpus) >= 2000
    joined = "".join(corpus)
    for needle in ["\u200d", "🇺🇸", "<|im_end|>", "'ll", "٣", "\r\n", "\u3000", "\t", "def ", "日本", "\u0301", "\x04"]:
        assert needle in joined


def test_encode_matches_hugging_face(srppo_bin, smollm2, reference, corpus):
    assert_same_ids(encode_all(srppo_bin, smollm2, corpus), hf_ids(reference, corpus), corpus, reference)


def test_plain_text_lines_match_hugging_face(srppo_bin, smollm2, reference, corpus):
    texts = [t for t in corpus if "\n" not in t and "\r" not in t][:500] + [""]
    out = run_srppo(srppo_bin, "tokenize", "--model", smollm2, input="".join(t + "\n" for t in texts)).stdout
    got = [line["ids"] for line in json_lines(out)]
    assert_same_ids(got, hf_ids(reference, texts), texts, reference)


def test_every_unicode_scalar_matches_hugging_face(srppo_bin, smollm2, reference):
    texts = tokenizer_corpus.every_scalar_texts()
    assert_same_ids(encode_all(srppo_bin, smollm2, texts), hf_ids(reference, texts), texts, reference)


def test_character_class_table_is_current():
    """The committed table equals a fresh extraction from this `tokenizers` (Oniguruma, Rust)."""
    committed = (ROOT / unicode_classes.SWIFT_FILE).read_text()
    assert committed == unicode_classes.swift_source(unicode_classes.classes()), \
        "regenerate with: .venv/bin/python Tests/python/unicode_classes.py > " + unicode_classes.SWIFT_FILE


def test_decode_round_trips_and_matches_hugging_face(srppo_bin, smollm2, reference, corpus):
    ids = hf_ids(reference, corpus)
    decoded = decode_all(srppo_bin, smollm2, ids)
    assert decoded == [reference.decode(x, skip_special_tokens=False) for x in ids]
    vocabulary = set(reference.get_vocab())
    lacking = {b for b in range(256) if hf_reference_byte_char(b) not in vocabulary}
    for text, back in zip(corpus, decoded):
        if not lacking & set(text.encode()):
            assert back == text


def hf_reference_byte_char(byte):
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if byte in printable:
        return chr(byte)
    return chr(256 + [b for b in range(256) if b not in printable].index(byte))


def test_decode_of_random_ids_matches_hugging_face(srppo_bin, smollm2, reference):
    rng = random.Random(7)
    size = reference.get_vocab_size()
    partial = [i for t, i in reference.get_vocab().items() if len(t) == 1 and ord(t) >= 0x80]  # lone high bytes
    lists = [[rng.choice([rng.randrange(size), rng.randrange(17), rng.choice(partial)]) for _ in range(rng.randrange(0, 30))]
             for _ in range(1000)]
    for skip in (False, True):
        extra = ["--skip-special-tokens"] if skip else []
        assert decode_all(srppo_bin, smollm2, lists, *extra) == [reference.decode(x, skip_special_tokens=skip) for x in lists]


def test_decode_rejects_ids_outside_the_vocabulary(srppo_bin, smollm2):
    result = run_srppo(srppo_bin, "tokenize", "--model", smollm2, "--decode", input='{"ids":[1,2]}\n{"ids":[49152]}\n', check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "srppo: <stdin>:2: token id 49152 is outside the vocabulary (0..<49152)"


@pytest.mark.parametrize("name", ["gpt-2", "llama-bpe", "qwen2"])
def test_other_pre_tokenizers_match_hugging_face(srppo_bin, metadata, corpus, tmp_path, name):
    """SmolLM2's vocabulary with the pre-tokenizer (and ignore_merges, NFC) of another family."""
    meta = dict(metadata, **{"tokenizer.ggml.pre": name})
    path = tmp_path / f"{name}.gguf"
    hf_reference.write_tokenizer_gguf(path, meta)
    reference = hf_reference.tokenizer_from_metadata(meta)
    texts = corpus + ["'S 'LL 'Ve 'ſ", "e\u0301 A\u030a \u212b \u1100\u1161 \uf900 \u0958", "12345 6789012", "a\r\n\r\n\tb"]
    assert_same_ids(encode_all(srppo_bin, path, texts), hf_ids(reference, texts), texts, reference)


@pytest.mark.parametrize("name", ["smollm", "gpt-2", "llama-bpe", "qwen2"])
def test_tokenizer_json_folders_load_and_match(srppo_bin, metadata, corpus, tmp_path, name):
    """tokenizer.json written by `tokenizers` itself (plus tokenizer_config.json) loads with the same ids."""
    meta = dict(metadata, **{"tokenizer.ggml.pre": name})
    reference = hf_reference.tokenizer_from_metadata(meta)
    reference.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>", "special": True}, "pad_token": None,
        "chat_template": QWEN2_TEMPLATE}))
    assert_same_ids(encode_all(srppo_bin, tmp_path, corpus), hf_ids(reference, corpus), corpus, reference)


@pytest.mark.parametrize("template_name", ["model", "qwen2", "llama3", "chatml", "respaced"])
def test_chat_rendering_matches_jinja(srppo_bin, smollm2, metadata, reference, tmp_path, template_name):
    templates = {"model": metadata["tokenizer.chat_template"], "qwen2": QWEN2_TEMPLATE, "llama3": LLAMA3_TEMPLATE,
                 "chatml": CHATML_TEMPLATE, "respaced": RESPACED_SMOLLM2_TEMPLATE}
    template = templates[template_name]
    extra = []
    if template_name != "model":
        (tmp_path / "template.jinja").write_text(template)
        extra = ["--chat-template", str(tmp_path / "template.jinja")]
    bos = hf_reference.special_token_text(metadata, "bos_token_id")
    eos = hf_reference.special_token_text(metadata, "eos_token_id")
    for add_generation_prompt in (False, True):
        got = render_all(srppo_bin, smollm2, CONVERSATIONS, add_generation_prompt, *extra)
        expected = [hf_reference.render_chat(template, c, add_generation_prompt, bos, eos) for c in CONVERSATIONS]
        assert [g["text"] for g in got] == expected
        assert [g["ids"] for g in got] == hf_ids(reference, expected)


def test_unknown_chat_template_is_a_clear_error(srppo_bin, smollm2, tmp_path):
    template = tmp_path / "mistral.jinja"
    template.write_text("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}")
    line = json.dumps({"messages": [{"role": "user", "content": "Hi"}]}) + "\n"
    result = run_srppo(srppo_bin, "tokenize", "--model", smollm2, "--jsonl", "--chat-template", str(template), input=line, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"srppo: {template}: chat template not recognized")
    assert result.stderr.count("\n") == 1


def test_exported_hugging_face_files_load_in_tokenizers_transformers_and_srppo(srppo_bin, smollm2, metadata, reference, corpus, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    folder = tmp_path / "checkpoint"
    run_srppo(srppo_bin, "tokenize", "--model", smollm2, "--write-hf-tokenizer", str(folder))
    expected = hf_ids(reference, corpus)
    assert hf_ids(Tokenizer.from_file(str(folder / "tokenizer.json")), corpus) == expected
    assert_same_ids(encode_all(srppo_bin, folder, corpus), expected, corpus, reference)

    loaded = AutoTokenizer.from_pretrained(str(folder))
    assert [loaded.encode(t, add_special_tokens=False) for t in corpus] == expected
    assert (loaded.bos_token, loaded.eos_token, loaded.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    template = metadata["tokenizer.chat_template"]
    for conversation in CONVERSATIONS[:-1]:
        for add_generation_prompt in (False, True):
            assert loaded.apply_chat_template(conversation, tokenize=False, add_generation_prompt=add_generation_prompt) == \
                hf_reference.render_chat(template, conversation, add_generation_prompt, "<|im_start|>", "<|im_end|>")


@pytest.mark.parametrize("name", ["llama-bpe", "qwen2"])
def test_exported_files_keep_ignore_merges_and_nfc(srppo_bin, metadata, corpus, tmp_path, name):
    meta = dict(metadata, **{"tokenizer.ggml.pre": name})
    hf_reference.write_tokenizer_gguf(tmp_path / "model.gguf", meta)
    run_srppo(srppo_bin, "tokenize", "--model", str(tmp_path / "model.gguf"), "--write-hf-tokenizer", str(tmp_path / "hf"))
    from tokenizers import Tokenizer
    texts = corpus[:800] + ["e\u0301 \u212b"]
    expected = hf_ids(hf_reference.tokenizer_from_metadata(meta), texts)
    assert hf_ids(Tokenizer.from_file(str(tmp_path / "hf" / "tokenizer.json")), texts) == expected
    assert encode_all(srppo_bin, tmp_path / "hf", texts) == expected


def test_score_text_and_chat_inputs_use_the_documented_ids(srppo_bin, smollm2, metadata, reference):
    template = metadata["tokenizer.chat_template"]
    im_end = reference.token_to_id("<|im_end|>")
    eos = metadata["tokenizer.ggml.eos_token_id"]
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    text_lines = [
        {"prompt": "The capital of France is", "response": " Paris."},
        {"messages": messages, "response": "The capital of France is Paris."},
        {"messages": messages + [{"role": "assistant", "content": "Paris."}]},
    ]
    id_lines = [
        {"prompt_ids": reference.encode("The capital of France is", add_special_tokens=False).ids,
         "response_ids": reference.encode(" Paris.", add_special_tokens=False).ids + [eos]},
        {"prompt_ids": reference.encode(hf_reference.render_chat(template, messages, True), add_special_tokens=False).ids,
         "response_ids": reference.encode("The capital of France is Paris.", add_special_tokens=False).ids + [im_end]},
        {"prompt_ids": reference.encode(hf_reference.render_chat(template, messages, True), add_special_tokens=False).ids,
         "response_ids": reference.encode("Paris.", add_special_tokens=False).ids + [im_end]},
    ]
    def score(lines):
        out = run_srppo(srppo_bin, "score", "--model", smollm2, "--threads", "1",
                        input="".join(json.dumps(line) + "\n" for line in lines)).stdout
        return json_lines(out)
    from_text = score(text_lines)
    assert from_text == score(id_lines)
    assert [r["n"] for r in from_text] == [len(line["response_ids"]) for line in id_lines]


@pytest.mark.parametrize("change, message", [
    ({"tokenizer.ggml.pre": "deepseek-llm"}, "unknown pre-tokenizer 'deepseek-llm' (supported: default, gpt-2,"),
    ({"tokenizer.ggml.model": "llama"}, "tokenizer model 'llama' is not supported"),
    ({"tokenizer.ggml.merges": ["Ġ t", "nonsense"]}, "merge #1 'nonsense': expected two tokens separated by one space"),
    ({"tokenizer.ggml.merges": ["Ġ t", "Ġ qqqq"]}, "merge #1 'Ġ qqqq': 'qqqq' is not in the vocabulary"),
    ({"tokenizer.ggml.eos_token_id": 60000}, "tokenizer field 'eos token id': 60000 is outside the vocabulary of 49152 tokens"),
    ({"tokenizer.ggml.token_type": [1, 3]}, "tokenizer field 'tokenizer.ggml.token_type': 2 types for 49152 tokens"),
])
def test_malformed_gguf_tokenizers_fail_with_one_clear_line(srppo_bin, metadata, tmp_path, change, message):
    path = tmp_path / "bad.gguf"
    hf_reference.write_tokenizer_gguf(path, dict(metadata, **change))
    result = run_srppo(srppo_bin, "tokenize", "--model", str(path), input="hello\n", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"srppo: {path}: {message}") and result.stderr.count("\n") == 1


def test_missing_tokenizer_metadata_is_named(srppo_bin, metadata, tmp_path):
    path = tmp_path / "bad.gguf"
    hf_reference.write_tokenizer_gguf(path, {k: v for k, v in metadata.items() if k != "tokenizer.ggml.tokens"})
    result = run_srppo(srppo_bin, "tokenize", "--model", str(path), input="hello\n", check=False)
    assert (result.returncode, result.stderr) == (1, f"srppo: {path}: tokenizer field 'tokenizer.ggml.tokens' is missing\n")
