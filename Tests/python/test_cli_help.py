"""Every command's --help, as a snapshot (swift-argument-parser's own habit): a flag added, renamed,
removed or re-described shows up as a diff here, so the change is deliberate. After such a change:

    SRPPO_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest Tests/python/test_cli_help.py

and commit Tests/python/snapshots/help.txt with it."""
import difflib
import json
import os
import pathlib
import subprocess

SNAPSHOT = pathlib.Path(__file__).parent / "snapshots" / "help.txt"


def command_paths(binary):
    """Every command and subcommand of `binary`, from its --experimental-dump-help."""
    dump = json.loads(subprocess.run([binary, "--experimental-dump-help"], capture_output=True, text=True, check=True).stdout)
    paths = []

    def walk(command, path):
        paths.append(path)
        for sub in command.get("subcommands", []):
            if sub["commandName"] != "help":
                walk(sub, path + [sub["commandName"]])
    walk(dump["command"], [])
    return paths


def render(srppo_bin):
    environment = dict(os.environ, COLUMNS="100")
    parts = []
    for binary in [srppo_bin, str(pathlib.Path(srppo_bin).parent / "srppod")]:
        name = pathlib.Path(binary).name
        for path in command_paths(binary):
            text = subprocess.run([binary, *path, "--help"], capture_output=True, text=True, check=True, env=environment).stdout
            parts.append(f"=== {' '.join([name, *path])} ===\n{text.rstrip()}\n")
    return "\n".join(parts)


def test_every_commands_help_matches_the_snapshot(srppo_bin):
    current = render(srppo_bin)
    if os.environ.get("SRPPO_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    expected = SNAPSHOT.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), current.splitlines(True), "snapshot", "now", n=2))
    assert current == expected, "--help changed (update the snapshot if deliberate, see the module docstring):\n" + diff
