"""The README works as typed: every code block runs, in order, in a scratch folder.

Fenced blocks tagged ``python`` run in one shared namespace (a later block uses the names of an
earlier one, as a reader's session would); blocks tagged ``sh`` (or ``bash``) run with bash,
stopping at the first failing command, with the project's commands on the PATH as after
activating its virtual environment. Blocks with any other tag, or none, are text and are not
run, so sections can be added to the README freely.

A block that must not run in tests says so in its info string, visibly to whoever edits the
README: ```` ```sh no-test ````. Each such block needs a reason in :data:`EXEMPT` below (keyed
by its first line), so exceptions stay few and justified.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUN = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh"}
SKIP_WORD = "no-test"

#: The blocks that are not run, by first line, and why.
EXEMPT = {
    "make demo": "creates .venv and pip-installs into it: needs the network, and minutes",
    "python3 -m venv .venv": "creates a virtual environment and pip-installs into it",
    "fusion dashboard --train digits": "serves until Ctrl-C; tests/test_dashboard.py drives the "
                                       "dashboard in a real browser",
}


def fenced_blocks(text: str) -> list[dict]:
    """Every top-level fenced block: its language, words of its info string, first line
    number (from 1) and code."""
    blocks, current = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^(```+|~~~+)\s*(.*)$", line)
        if current is None and fence:
            words = fence.group(2).split()
            current = {"fence": fence.group(1), "lang": words[0].lower() if words else "",
                       "words": words[1:], "line": number + 1, "lines": []}
        elif current is not None and line.strip() == current["fence"]:
            current["code"] = "\n".join(current.pop("lines")) + "\n"
            blocks.append(current)
            current = None
        elif current is not None:
            current["lines"].append(line)
    assert current is None, f"README.md: the block opened at line {current['line'] - 1} " \
                            "is never closed"
    return blocks


def runnable(blocks: list[dict]) -> list[dict]:
    return [b for b in blocks if b["lang"] in RUN and SKIP_WORD not in b["words"]]


def first_line(block: dict) -> str:
    line = next(line for line in block["code"].splitlines() if line.strip())
    return line.split("#")[0].strip()


def test_the_readme_parser_runs_tagged_blocks_only():
    text = ("intro\n```python\nx = 1\n```\n```\nplain\n```\n```text\nout\n```\n"
            "```sh no-test\nmake demo\n```\n```bash\necho hi\n```\n````markdown\n```python\n"
            "nested\n```\n````\n")
    blocks = fenced_blocks(text)
    assert [b["lang"] for b in blocks] == ["python", "", "text", "sh", "bash", "markdown"]
    assert [(b["lang"], b["line"], b["code"]) for b in runnable(blocks)] == [
        ("python", 3, "x = 1\n"), ("bash", 15, "echo hi\n")]


def test_every_block_left_out_is_justified():
    skipped = [b for b in fenced_blocks(README.read_text()) if SKIP_WORD in b["words"]]
    unexplained = [(b["line"], first_line(b)) for b in skipped if first_line(b) not in EXEMPT]
    assert not unexplained, ("README blocks marked no-test without a reason in EXEMPT: "
                             f"{unexplained}")
    assert len(skipped) <= len(EXEMPT)


# Runs the blocks in order in a fresh interpreter: python in one namespace, sh with bash.
DRIVER = r"""
import json, subprocess, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__readme__"}
for block in blocks:
    where = f"README.md, the {block['lang']} block at line {block['line']}"
    print(f"=== {where}", flush=True)
    if block["kind"] == "python":
        exec(compile(block["code"], f"README.md:{block['line']}", "exec"), namespace)
    else:
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]])
        if done.returncode:
            sys.exit(f"{where} failed: exit status {done.returncode}")
print("=== all blocks ran", flush=True)
"""


def test_readme_runs_as_typed(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    blocks = [{**b, "kind": RUN[b["lang"]]} for b in runnable(fenced_blocks(README.read_text()))]
    assert any(b["kind"] == "python" for b in blocks) and any(b["kind"] == "sh" for b in blocks)
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    (tmp_path / "driver.py").write_text(DRIVER)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # As after `. .venv/bin/activate`: the interpreter's folder (with the project's commands)
    # first on the PATH; the checkout under test first on the module path.
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"),
                           str(tmp_path / "blocks.json")], cwd=scratch, env=env,
                          capture_output=True, text=True, timeout=1500)
    report = (done.stdout[-6000:] + "\n" + done.stderr[-6000:]).strip()
    assert done.returncode == 0, report
    assert "=== all blocks ran" in done.stdout
    # what the blocks say they write
    for name in ("digits.safetensors", "data.csv", "data_train.csv", "data_valid.csv",
                 "saved_model.safetensors", "curves.png", "adam.html", "sgd.html"):
        assert (scratch / name).is_file(), name
    if shutil.which("dot"):
        for name in ("graph.svg", "model.svg"):
            assert (scratch / name).read_text().lstrip().startswith(("<?xml", "<svg")), name
