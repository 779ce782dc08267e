"""The README's "Code map" names every module of Package.swift with exactly the modules it imports
(products of other packages written by their package's short name, e.g. NIO, ArgumentParser)."""
import json
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHORT = {"swift-nio": "NIO", "swift-argument-parser": "ArgumentParser"}


def code_map():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([\w-]+)` \|[^|]*\|([^|]*)\|$", line)
        if match:
            rows[match.group(1)] = {name.strip().strip("`") for name in match.group(2).split(",") if name.strip()}
    return rows


def package_targets():
    dump = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, capture_output=True, text=True,
                                     check=True).stdout)
    targets = {}
    for target in dump["targets"]:
        if target["type"] == "test":
            continue
        imports = set()
        for dependency in target.get("dependencies", []):
            (kind, value), = dependency.items()
            imports.add(SHORT[value[1]] if kind == "product" else value[0])
        targets[target["name"]] = imports
    return targets


def test_the_readme_code_map_matches_package_swift():
    assert code_map() == package_targets()
