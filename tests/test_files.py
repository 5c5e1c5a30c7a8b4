"""Files given by a user: only regular files are read, JSON nesting is bounded, and every file
Fusion writes is written whole (temporary file, then rename) with the permissions of any file
the user writes. Then the readers and writers built on that: histories, the ``fusion`` and
``fusion-digits`` commands.

Anything that could block on a FIFO runs in a subprocess with a time limit, so that a
regression fails the test instead of hanging the run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fusion.files import (
    MAX_JSON_DEPTH,
    NotARegularFileError,
    atomic_write,
    json_depth,
    parse_json,
    read_regular_file,
)
from fusion.train import History

ROOT = Path(__file__).resolve().parents[1]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
needs_posix = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and devices")


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this checkout's Fusion."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": path,
                                                "MPLBACKEND": "Agg"})


# --- reading -----------------------------------------------------------------------------------
def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"\x00\x01" * 1000)
    assert read_regular_file(path) == b"\x00\x01" * 1000
    with pytest.raises(ValueError, match="2000 bytes, more than the 100"):
        read_regular_file(path, limit=100)


@needs_posix
def test_a_device_or_a_folder_is_refused(tmp_path):
    with pytest.raises(NotARegularFileError, match="/dev/zero: is a character device"):
        read_regular_file("/dev/zero")
    with pytest.raises(NotARegularFileError, match="is a folder, not a regular file"):
        read_regular_file(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "absent")


@needs_fifo
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = run_python("import sys\n"
                      "from fusion.files import read_regular_file\n"
                      "try:\n"
                      "    read_regular_file(sys.argv[1])\n"
                      "except OSError as error:\n"
                      "    print(error)\n", str(fifo))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{fifo}: is a FIFO (named pipe), not a regular file"


@pytest.mark.parametrize("text", [
    '{"a": [1, {"b": null}], "c": "x"}', "3", '"[[[{{{"', '["\\"[", {"k\\\\": [[]]}]', "[]",
])
def test_json_depth_counts_what_the_parser_would_nest(text):
    def depth(value) -> int:
        if isinstance(value, dict):
            return 1 + max(map(depth, value.values()), default=0)
        if isinstance(value, list):
            return 1 + max(map(depth, value), default=0)
        return 0

    assert json_depth(text) == depth(json.loads(text))
    assert parse_json(text) == json.loads(text)


def test_deep_json_is_refused_before_it_is_parsed():
    deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(ValueError, match=f"nested 200000 levels deep; at most {MAX_JSON_DEPTH}"):
        parse_json(deep)
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(json.JSONDecodeError):
        parse_json("{oops")


# --- writing -----------------------------------------------------------------------------------
@needs_posix
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_new_file_gets_the_permissions_of_any_file_the_user_writes(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with atomic_write(tmp_path / "new.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o666 & ~umask


@needs_posix
def test_a_replaced_file_keeps_its_permissions_and_a_link_its_target(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with atomic_write(link, "w") as f:
        f.write("new")
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "data.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_write(path, "w") as f:
            f.write("new, but only")
            raise RuntimeError("half-way")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]
    with pytest.raises(IsADirectoryError):
        with atomic_write(tmp_path, "w") as f:
            f.write("x")
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


@needs_posix
def test_a_device_is_written_to_not_replaced():
    with atomic_write("/dev/null", "w") as f:
        f.write("discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --- histories -----------------------------------------------------------------------------------
def test_history_files_are_written_atomically(tmp_path, monkeypatch):
    history = History()
    history.append({"loss": 1.0, "val_loss": 2.0})
    history.to_json(tmp_path / "h.json")
    before = (tmp_path / "h.json").read_bytes()
    history.append({"loss": 0.5, "val_loss": 1.5})

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        history.to_json(tmp_path / "h.json")
    monkeypatch.undo()
    assert (tmp_path / "h.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["h.json"]
    assert History.from_json(tmp_path / "h.json")["loss"] == [1.0]


@pytest.mark.parametrize("content, match", [
    ("[1, 2]", "expected an object of columns, got list"),
    ('{"epoch": 3}', "column 'epoch' is not a list"),
    ('{"loss": [1, "a"]}', "column 'loss' holds 'a', not a number"),
    ('{"loss": [1, 2], "val_loss": [1]}', r"different lengths \[1, 2\]"),
    ('{"epoch": [null], "loss": [1]}', "epoch column has an empty entry"),
    ("{oops", "is not a history"),
    ("[" * 5000 + "]" * 5000, "nested 5000 levels deep"),
])
def test_a_file_that_is_not_a_history_is_a_clear_error(tmp_path, content, match):
    path = tmp_path / "h.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as raised:
        History.from_json(path)
    assert str(path) in str(raised.value)


@needs_fifo
def test_a_history_from_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "history.json"
    os.mkfifo(fifo)
    done = run_python("import sys\n"
                      "from fusion.cli import main\n"
                      "sys.exit(main(['dashboard', '--history', sys.argv[1], '--no-serve',\n"
                      "               '--report', sys.argv[1] + '.html']))\n", str(fifo))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (f"fusion dashboard: {fifo}: is a FIFO (named pipe), not a "
                                   "regular file")


def test_fusion_dashboard_with_a_bad_history_is_one_line(tmp_path, capsys):
    pytest.importorskip("bokeh")
    from fusion.cli import main

    path = tmp_path / "h.json"
    path.write_text("[1, 2]")
    assert main(["dashboard", "--history", str(path), "--no-serve", "--report",
                 str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err == f"fusion dashboard: {path}: is not a history (expected an object of " \
                  "columns, got list)\n"


# --- the commands ------------------------------------------------------------------------------
def test_fusion_draw_with_an_unknown_backend_is_one_line(tmp_path):
    import fusion

    fusion.save(fusion.nn.Sequential(fusion.nn.Linear(3, 2)), tmp_path / "m.safetensors")
    done = run_python("import os, sys\n"
                      "os.environ['FUSION_BACKEND'] = 'abacus'\n"
                      "from fusion.cli import main\n"
                      "sys.exit(main(['draw', sys.argv[1], '-o', '-']))\n",
                      str(tmp_path / "m.safetensors"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("fusion draw: unknown backend 'abacus'; installed backends:")
    assert done.stderr.count("\n") == 1


def test_fusion_draw_writes_the_dot_source_atomically(tmp_path, monkeypatch):
    import fusion
    from fusion.cli import main

    fusion.save(fusion.nn.Sequential(fusion.nn.Linear(3, 2)), tmp_path / "m.safetensors")
    output = tmp_path / "m.gv"
    output.write_text("an earlier drawing")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["draw", str(tmp_path / "m.safetensors"), "-o", str(output)])
    monkeypatch.undo()
    assert output.read_text() == "an earlier drawing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gv", "m.safetensors"]
    assert main(["draw", str(tmp_path / "m.safetensors"), "-o", str(output)]) == 0
    assert output.read_text().startswith("digraph")


def test_fusion_digits_checks_its_output_folder_before_training(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from fusion.examples.digits import main

    (tmp_path / "a_file").write_text("not a folder\n")
    status = main(["--out", str(tmp_path / "a_file" / "out"), "--epochs", "1", "--quiet"])
    captured = capsys.readouterr()
    assert status == 1 and captured.out == ""  # nothing trained
    assert captured.err == (f"fusion-digits: --out {tmp_path / 'a_file' / 'out'}: cannot be "
                            "written (Not a directory)\n")
