"""The project's text points only at what its users can see: no internal planning files or
tracker numbers, and every benchmark script and section that the docs quote figures from
exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["fusion", "tests", "docs", "benchmarks", "examples"]
SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg"}
# Spelled in pieces so that this file does not match itself.
INTERNAL = re.compile("|".join([
    r"\b(?:DESIGN|STYLE|PERFORMANCE)\." + "md",
    r"\b[Ii]ssue" + r"s? #?\d+",
    r"(?<![\w&])#" + r"\d+\b(?![0-9a-fA-F])",  # a number after "#", not a colour or "fc#2"
]))


def text_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in SOURCES:
        files += [p for p in (ROOT / folder).rglob("*")
                  if p.suffix in SUFFIXES and "__pycache__" not in p.parts
                  and not any(part.endswith(".egg-info") or part == "build" for part in p.parts)]
    return sorted(files)


def test_nothing_cites_internal_files_or_tracker_numbers():
    found = []
    for path in text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for match in INTERNAL.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r}")
    assert not found, "state the rule itself instead:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_should():
    assert INTERNAL.search("as " + "DESIGN" + ".md says")
    assert INTERNAL.search("targets from " + "issue" + " 3")
    assert INTERNAL.search("test_x  # " + "#" + "12")
    assert not INTERNAL.search('"#1f77b4"') and not INTERNAL.search("fc#2")


DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_benchmarks_named_in_the_docs_exist(doc):
    text = doc.read_text(encoding="utf-8")
    for script in re.findall(r"benchmarks/[\w/]+\.py", text):
        assert (ROOT / script).is_file(), f"{doc.name} names {script}, which does not exist"
    sections = set(re.findall(r'"(\w+)" in sections', (ROOT / "benchmarks" / "backends.py")
                              .read_text(encoding="utf-8")))
    for named in re.findall(r"--only ([\w,]+)", text):
        missing = set(named.split(",")) - sections
        assert not missing, f"{doc.name}: benchmarks/backends.py has no section {missing}"
