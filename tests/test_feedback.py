"""What a user sees during long work and when something optional is missing: a line before
numba compiles, and one-line errors (never a traceback) from the command-line tools."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(code: str, *args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": ROOT, **(env or {})})


def test_numba_announces_its_first_compile_once_and_counts_the_time(tmp_path):
    pytest.importorskip("numba")
    code = """
import fusion
fusion.set_backend("numba")
x = fusion.randn(50, 3)
for _ in range(3):
    y = (x * 2.5 + 1.0).exp().sum().item()  # the backend is lazy: item() runs the work
print(fusion.get_backend().compile_seconds)
"""
    fresh = run(code, env={"FUSION_NUMBA_CACHE_DIR": str(tmp_path / "cache")})
    assert fresh.returncode == 0, fresh.stderr
    from fusion.backends.numba.compiling import MESSAGE

    assert fresh.stderr.count(MESSAGE) == 1, fresh.stderr
    assert float(fresh.stdout) > 0
    cached = run(code, env={"FUSION_NUMBA_CACHE_DIR": str(tmp_path / "cache")})
    assert MESSAGE not in cached.stderr  # loaded from the cache: nothing to announce
    assert float(cached.stdout) == 0.0


def one_line_error(result: subprocess.CompletedProcess, prefix: str) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


CLI = "import sys; {setup}; from fusion.cli import main; sys.exit(main(sys.argv[1:]))"


def test_dashboard_without_bokeh_is_one_line(tmp_path):
    blocked = CLI.format(setup="sys.modules['bokeh'] = None")  # as if not installed
    line = one_line_error(run(blocked, "dashboard", "--port", "0"), "fusion dashboard: ")
    assert "pip install 'fusion[dashboard]'" in line


def test_dashboard_on_a_busy_port_is_one_line():
    pytest.importorskip("bokeh")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(run(CLI.format(setup="pass"), "dashboard", "--port", str(port)),
                              "fusion dashboard: ")
    assert f"port {port}" in line and "--port" in line


def test_draw_without_graphviz_dot_is_one_line(tmp_path):
    import fusion
    from fusion import nn

    model_path = tmp_path / "m.safetensors"
    fusion.save(nn.Sequential(nn.Linear(2, 3)), model_path)
    no_dot = {"PATH": str(tmp_path)}  # a PATH where no `dot` program is found
    result = run(CLI.format(setup="pass"), "draw", str(model_path), "-o",
                 str(tmp_path / "m.svg"), env=no_dot)
    line = one_line_error(result, "fusion draw: ")
    assert "graphviz" in line and "-o" in line
    # and the Python API says the same, instead of graphviz's own exception
    code = ("import fusion; from fusion.viz import draw_graph\n"
            "x = fusion.randn(2, requires_grad=True)\n"
            "try:\n    draw_graph(x.sum()).render('g', format='svg')\n"
            "except Exception as e:\n    print(type(e).__name__)")
    assert run(code, env=no_dot, cwd=tmp_path).stdout.strip() == "ExecutableNotFound"
