"""Running the conformance suite against a backend by name, as a third party would.

The pytest plugin (``--fusion-backend``, ``--fusion-xfail``) is tested with ``pytester``
in-process, against small backends registered for one test; ``python -m fusion.testing`` and
``python -m fusion info`` run in subprocesses. The last test installs the example package
``examples/fusion-pylist`` with pip into a scratch environment layered on this one and runs
the whole suite against it by name (deselect locally with ``-m "not install"``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fusion.backends.numpy import NumpyBackend
from fusion.core.backend import registry
from fusion.testing.__main__ import build_args, parse
from fusion.testing.plugin import read_expected_failures

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fusion-pylist"
# A few dozen tests of the suite: enough to see selection, skips and xfails at work.
NEG_TESTS = "TestPrimitives and (test_neg or test_movement_returns_views)"


class Limited(NumpyBackend):
    """numpy, declaring nothing beyond the basics: no float64, no int64, no views."""

    capabilities = frozenset()


class NegIsWrong(NumpyBackend):
    """numpy, with a negation that forgets to negate."""

    def neg(self, x):
        return x.copy()


@pytest.fixture
def backends():
    """Register the test backends in the process-wide registry for one test."""
    registry.load()
    names = {"limited": Limited, "negwrong": NegIsWrong}
    for name, cls in names.items():
        registry.register(name, cls, plugin="tests.test_third_party")
    yield names
    for name in names:
        registry.unregister(name)


def run_suite(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # the suite's modules were imported by this process already: no assert rewriting for them
    return pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestWarning",
                              "--pyargs", "fusion.testing", *args)


def ids_with(result: pytest.RunResult, outcome: str) -> list[str]:
    """The test ids ``-v`` printed with ``outcome`` (PASSED, SKIPPED, XFAIL, ...)."""
    return re.findall(rf"(\S+::\S+) {outcome}", result.stdout.str())


# --- the plugin ----------------------------------------------------------------------------
def test_fusion_backend_selects_skips_and_fails(pytester, backends):
    # one run, three backends: names repeated and comma-separated
    result = run_suite(pytester, "--fusion-backend", "numpy,limited", "--fusion-backend",
                       "negwrong", "-k", NEG_TESTS, "-v", "-rs")
    assert "FUSION_TEST_BACKENDS" not in os.environ  # the plugin restored the environment
    passed, skipped = ids_with(result, "PASSED"), ids_with(result, "SKIPPED")
    failed = ids_with(result, "FAILED")
    ran = {re.search(r"\[(\w+)", i).group(1) for i in passed + skipped + failed}
    assert ran == {"numpy", "limited", "negwrong"}  # and numba, also installed, is not run
    # numpy passes everything
    assert not [i for i in skipped + failed if "[numpy" in i]
    assert len([i for i in passed if "[numpy" in i]) >= 5
    # limited: what needs float64, int64 or views is skipped, with the capability named
    assert [i for i in passed if "[limited" in i] and [i for i in skipped if "[limited" in i]
    for capability in ("float64", "int64", "views"):
        result.stdout.fnmatch_lines([f"SKIPPED *lacks capability '{capability}'*"])
    # negwrong fails its negation tests, and only those
    assert len(failed) >= 4 and all("[negwrong" in i and "test_neg" in i for i in failed)


def test_an_unknown_backend_is_a_usage_error(pytester):
    result = run_suite(pytester, "--fusion-backend", "nosuchbackend")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backend 'nosuchbackend'; installed backends: *numpy*"])


def test_expected_failures_file(pytester, backends):
    xfails = pytester.path / "xfails.txt"
    xfails.write_text(textwrap.dedent("""\
        # negwrong: known deviations

        TestPrimitives::test_neg   # negation forgets to negate (known bug)
        fusion/testing/test_suite.py::TestPrimitives::test_no_such_test  # a stale entry
    """))
    result = run_suite(pytester, "--fusion-backend", "negwrong,numpy", "--fusion-xfail",
                       str(xfails), "-k", NEG_TESTS, "-rxXs", "-v")
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and outcomes["passed"] >= 1
    xfailed, xpassed = ids_with(result, "XFAIL"), ids_with(result, "XPASS")
    assert len(xfailed) >= 4 and all("test_neg[negwrong" in i for i in xfailed)
    # the entry names the test on every backend: where it passes, it is an XPASS
    assert len(xpassed) >= 4 and all("test_neg[numpy" in i for i in xpassed)
    result.stdout.fnmatch_lines(["XFAIL *test_neg*negation forgets to negate (known bug)*"])
    # tests the file does not name are not touched
    assert all("test_neg" not in test_id for test_id in ids_with(result, "PASSED"))
    # the stale entry is reported with its file and line
    result.stdout.fnmatch_lines(["*expected failures that matched no test*",
                                 "*xfails.txt:4: *TestPrimitives::test_no_such_test"])


def test_a_malformed_expected_failures_file_is_a_usage_error(pytester):
    xfails = pytester.path / "xfails.txt"
    xfails.write_text("TestPrimitives::test_neg\nTestPrimitives::test_exp   no hash here\n")
    result = run_suite(pytester, "--fusion-backend", "numpy", "--fusion-xfail", str(xfails))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*xfails.txt:2: expected 'test_id  # reason'*"])


def test_one_class_pinned_to_a_backend_in_a_projects_own_tests(pytester, backends):
    # docs/backends.md, "In your own test suite": subclass through the module, pin a backend
    pytester.makeconftest('pytest_plugins = ["fusion.testing.fixtures"]')
    pytester.makepyfile(test_mine="""
        import fusion.testing.suite as suite

        class TestMinePrimitives(suite.TestPrimitives):
            fusion_backends = ["limited"]
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestWarning",
                                "-k", "test_neg", "-v", "-rs")
    ids = ids_with(result, "PASSED") + ids_with(result, "SKIPPED")
    assert ids and all(i.startswith("test_mine.py::TestMinePrimitives::") for i in ids)
    assert all("[limited" in i for i in ids)  # pinned: not numpy, not numba
    result.stdout.fnmatch_lines(["SKIPPED *lacks capability 'int64'*"])


def test_reading_expected_failures(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("# comment\n\n  A::b[c-d]   #   why not  \nA::e\n")
    first, second = read_expected_failures(path)
    assert (first.test_id, first.reason, first.source) == ("A::b[c-d]", "why not", f"{path}:3")
    assert second.reason == f"listed in {path}:4"  # a reason is expected, but not required
    nodeid = "fusion/testing/test_suite.py::A::b[c-d]"
    assert first.matches(nodeid) and first.matches(nodeid.replace("c-d", "c-d"))
    assert not first.matches(nodeid.replace("c-d", "c-e"))
    assert second.matches("x/test_y.py::A::e[numpy]") and not second.matches("x.py::B::e")


# --- the command lines ----------------------------------------------------------------------
def test_parse_command_line():
    name, xfails, extra = parse(["mine", "-k", "neg", "--xfail", "a.txt", "-x", "--xfail=b.txt"])
    assert (name, xfails, extra) == ("mine", ["a.txt", "b.txt"], ["-k", "neg", "-x"])
    args = build_args(name, xfails, extra)
    assert args[:2] == ["--fusion-backend", "mine"]
    assert args[-2:] == ["--pyargs", "fusion.testing"]
    assert args[2:4] == ["--fusion-xfail=a.txt", "--fusion-xfail=b.txt"] and "-x" in args
    with pytest.raises(SystemExit):
        parse(["-k", "neg"])  # the name comes first


def run(*args: str, env: dict | None = None, cwd: Path | None = None, python=sys.executable,
        timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def test_python_m_fusion_testing(tmp_path):
    done = run("-m", "fusion.testing", "numpy", "-k", NEG_TESTS, "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\d+ passed", done.stdout)
    assert not (tmp_path / "fusion").exists()  # nothing but the cache is written here
    usage = run("-m", "fusion.testing", cwd=tmp_path)
    assert usage.returncode != 0 and "python -m fusion.testing NAME" in usage.stderr


def this_fusion() -> dict:
    """The environment of a subprocess that imports this checkout's Fusion."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_a_backend_named_twice_is_tested_once(pytester):
    # on the command line and through its alias: one backend, ids without a counter
    result = run_suite(pytester, "--fusion-backend", "numpy", "--fusion-backend", "np,numpy",
                       "-k", NEG_TESTS, "-v")
    ids = ids_with(result, "PASSED")
    assert ids and all("[numpy-" in i or i.endswith("[numpy]") for i in ids)
    assert len(ids) == len(set(ids))


def test_xfail_file_inside_a_project_that_pins_the_backend_runs_each_test_once(tmp_path):
    # docs/backends.md has a backend's project pin the suite to it in its pytest settings; an
    # xfail file in that project must not make the run read them on top of the command line
    project = tmp_path / "fusion-mine"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\naddopts = "--fusion-backend numpy"\n')
    (project / "xfails.txt").write_text("TestPrimitives::test_neg   # a known deviation\n")
    for cwd, path in ((tmp_path, "fusion-mine/xfails.txt"), (project, "xfails.txt")):
        done = run("-m", "fusion.testing", "numpy", "--xfail", path, "-k", NEG_TESTS, "-v",
                   "-rxX", cwd=cwd, env=this_fusion())
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        ids = re.findall(r"(\S+::\S+) (?:PASSED|XPASS|SKIPPED)", done.stdout)
        assert ids and len(ids) == len(set(ids))
        assert not re.search(r"\[numpy\d", done.stdout)  # no numpy0 / numpy1 twins
        xpassed = re.findall(r"(\S+::\S+) XPASS", done.stdout)
        assert xpassed and all("test_neg[numpy-" in i for i in xpassed)
        assert "matched no test" not in done.stdout


@pytest.mark.parametrize("autoload", ["entry point", "-p"])
def test_a_suite_run_gives_no_assert_rewrite_warning(tmp_path, autoload):
    env = this_fusion()
    if autoload == "-p":  # the plugin loaded by name, as from a source tree never installed
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    done = run("-m", "fusion.testing", "numpy", "-k", NEG_TESTS, "-q", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "PytestAssertRewriteWarning" not in done.stdout + done.stderr
    assert "warning" not in done.stdout.splitlines()[-1]


def test_python_m_fusion_info(tmp_path):
    done = run("-m", "fusion", "info", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["name", "version", "plugin", "package", "status"]
    numpy_row = next(r for r in rows if r.startswith("numpy"))
    assert np.__version__ in numpy_row and "fusion" in numpy_row and numpy_row.endswith("ready")


# --- the example package, installed with pip -----------------------------------------------
@pytest.fixture(scope="module")
def layered_env(tmp_path_factory) -> Path:
    """A new virtual environment that sees this one's packages (Fusion, pytest, numpy) and
    installs into its own: pip puts the example there, and this environment stays as it was.
    Returns its Python."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = run("-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                  python=python).stdout.strip()
    # site.addsitedir also runs this environment's .pth files (an editable Fusion's among them)
    parent = sysconfig.get_path("purelib")
    Path(purelib, "_fusion_test_parent.pth").write_text(
        f"import site; site.addsitedir({parent!r})\n")
    return python


@pytest.mark.install
def test_example_backend_installed_with_pip_passes_the_suite(layered_env, tmp_path):
    source = tmp_path / "fusion-pylist"  # a copy: the build writes build/ and egg-info
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    pip = run("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
              str(source), python=layered_env)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    # found through its entry point, by name
    info = run("-m", "fusion", "info", python=layered_env, cwd=tmp_path)
    assert info.returncode == 0, info.stdout + info.stderr
    row = next(r for r in info.stdout.splitlines() if r.startswith("pylist"))
    assert row.split()[:5] == ["pylist", "0.1.0", "pylist", "fusion-pylist", "0.1.0"]
    env = {**os.environ, "FUSION_BACKEND": "pylist"}
    chosen = run("-c", "import fusion; print(fusion.ones(2, 3).sum().backend)", env=env,
                 python=layered_env, cwd=tmp_path)
    assert chosen.stdout.strip() == "pylist", chosen.stderr

    # the whole suite, by name; what it does not support is skipped, with the reason
    suite = run("-m", "fusion.testing", "pylist", "-q", "-rs", "-p", "no:randomly",
                python=layered_env, cwd=tmp_path)
    summary = suite.stdout.strip().splitlines()[-1]
    assert suite.returncode == 0, suite.stdout[-5000:] + suite.stderr[-2000:]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary
    skips = [line for line in suite.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips, "pylist declares neither views nor fuse: those tests must be skipped"
    # only what pylist does not declare is skipped: views, and whole fused kernels
    assert all(re.search(r"lacks capability '(views|fuse)'", line) for line in skips), skips
    assert any("lacks capability 'views'" in line for line in skips), skips

    # the package's own tests: the suite as one test module, pinned by addopts, and its unit
    # tests (the primitives only, to keep this short)
    own = run("-m", "pytest", "-q", "-p", "no:cacheprovider",
              "-k", "TestPrimitives or test_listarray", python=layered_env, cwd=source)
    assert own.returncode == 0, own.stdout[-5000:] + own.stderr[-2000:]
    assert "[pylist" in run("-m", "pytest", "--collect-only", "-q", "-k", "test_neg",
                            "-p", "no:cacheprovider", python=layered_env, cwd=source).stdout
