"""The pytest plugin that points Fusion's conformance suite at a backend by name.

Installed with Fusion (entry point ``pytest11``), so it is active in every pytest run; it adds
options and does nothing else unless they are given:

``--fusion-backend NAME`` (repeatable)
    Run the suite against these backends only, instead of every installed one::

        pytest --fusion-backend mine --pyargs fusion.testing

``--fusion-xfail FILE`` (repeatable)
    An expected-failures file: the tests it names run as ``xfail`` with the reason it gives
    (see :func:`read_expected_failures` for the format). An entry that names no collected test
    is reported at the end of the run, so that a stale file does not go unnoticed.

``python -m fusion.testing NAME`` is the same run in one command (:mod:`fusion.testing.__main__`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: The environment variable the suite's ``backend`` fixture reads (fusion.testing.fixtures).
BACKENDS_ENV = "FUSION_TEST_BACKENDS"

# An id, then at least one blank and a ``#`` before the reason: ``id  # reason``.
_LINE = re.compile(r"^(?P<id>\S+)(?:\s+#\s*(?P<reason>.*))?$")


@dataclass
class ExpectedFailure:
    """One line of an expected-failures file."""

    test_id: str
    reason: str
    source: str  # "file:line", for messages
    matched: int = field(default=0, compare=False)

    def matches(self, nodeid: str) -> bool:
        """Whether this entry names the test ``nodeid`` (see :func:`read_expected_failures`)."""
        path, names = _split(self.test_id)
        item_path, item_names = _split(nodeid)
        if path is not None:
            # either path may be the longer one: pytest prints paths relative to the working
            # directory (../venv/.../fusion/testing/x.py), node ids are relative to the rootdir
            if item_path is None or not (path == item_path or path.endswith("/" + item_path)
                                         or item_path.endswith("/" + path)):
                return False
            return names in (item_names, _without_params(item_names))
        tail = len(names)  # without a path, the last names suffice: Class::test, or test
        return names in (item_names[-tail:], _without_params(item_names)[-tail:])


def _split(test_id: str) -> tuple[str | None, list[str]]:
    """``"a/b.py::C::t[x]"`` -> ``("a/b.py", ["C", "t[x]"])``; a leading path is optional."""
    segments = test_id.split("::")
    if segments[0].endswith(".py"):
        return segments[0].replace("\\", "/"), segments[1:]
    return None, segments


def _without_params(names: list[str]) -> list[str]:
    if names and names[-1].endswith("]"):
        return [*names[:-1], names[-1].split("[", 1)[0]]
    return names


def read_expected_failures(path: str | os.PathLike) -> list[ExpectedFailure]:
    """Parse an expected-failures file: one test id a line, ``id  # reason``.

    Blank lines and lines that start with ``#`` are comments. An id is a test as pytest names
    it, ``path::Class::test[params]``, where the path may be shortened to its last parts or
    left out (``Class::test[params]``) and the ``[params]`` may be left out to name every
    parametrization of the test::

        # fusion-mine: known deviations
        TestPrimitives::test_pow[mine-int32]   # integer pow wraps differently
        test_suite.py::TestLosses::test_nll    # no float64 accumulation yet

    Raises ``ValueError`` naming the file and line of a line that is not of this form.
    """
    entries = []
    text = Path(path).read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        source = f"{path}:{number}"
        found = _LINE.match(line)
        if found is None:
            raise ValueError(
                f"{source}: expected 'test_id  # reason', got {raw!r} "
                "(a test id has no spaces; the reason follows a '#')")
        reason = (found["reason"] or "").strip() or f"listed in {source}"
        entries.append(ExpectedFailure(found["id"], reason, source))
    return entries


# --- pytest hooks ------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fusion", "Fusion backend conformance suite")
    group.addoption(
        "--fusion-backend", action="append", default=[], metavar="NAME",
        dest="fusion_backends",
        help="run Fusion's conformance suite against backend NAME (repeatable; a "
             "comma-separated list also works); default: every installed backend")
    group.addoption(
        "--fusion-xfail", action="append", default=[], metavar="FILE", dest="fusion_xfail",
        help="expected-failures file: one test id a line, 'id  # reason'; those tests run "
             "as xfail with that reason (repeatable)")


_SAVED_ENV = pytest.StashKey[tuple[bool, str | None]]()
_EXPECTED = pytest.StashKey[list[ExpectedFailure]]()


def pytest_configure(config: pytest.Config) -> None:
    # The suite's modules apply its marker when they are imported, which is before the test
    # module that requires the fixtures plugin has registered it: declare the marker here.
    from .fixtures import _MARK

    config.addinivalue_line("markers", f"{_MARK}(*capabilities): skip unless the backend "
                            "under test has them (fusion.testing.requires)")
    names = [n.strip() for opt in config.getoption("fusion_backends", default=None) or []
             for n in opt.split(",") if n.strip()]
    if names:
        _check_installed(names)
        # a name given twice (on the command line and in a project's addopts, or as a name
        # and its alias) is one backend, tested once
        names = _distinct_backends(names)
        # The suite's ``backend`` fixture reads the environment (so that its own runs and
        # xdist workers agree); the previous value comes back at unconfigure.
        config.stash[_SAVED_ENV] = (BACKENDS_ENV in os.environ, os.environ.get(BACKENDS_ENV))
        os.environ[BACKENDS_ENV] = ",".join(names)
    entries = []
    for path in config.getoption("fusion_xfail", default=None) or []:
        try:
            entries += read_expected_failures(path)
        except (OSError, ValueError) as exc:
            raise pytest.UsageError(f"--fusion-xfail: {exc}") from exc
    config.stash[_EXPECTED] = entries


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_SAVED_ENV, None)
    if saved is None:
        return
    was_set, value = saved
    if was_set:
        os.environ[BACKENDS_ENV] = value
    else:
        os.environ.pop(BACKENDS_ENV, None)


def _check_installed(names: list[str]) -> None:
    """A name that is not installed is a usage error now, not one error per test later."""
    from fusion.core.backend import available_backends, registry

    installed = available_backends()  # loads the plugins: only when the option is used
    aliases = set(registry.aliases)
    unknown = [n for n in names if n not in installed and n not in aliases]
    if unknown:
        # the registry says why: a plugin of that name that failed, or what is installed
        why = "; ".join(registry.not_found_message(n) for n in dict.fromkeys(unknown))
        raise pytest.UsageError(f"--fusion-backend: {why} (see `python -m fusion info`)")


def _distinct_backends(names: list[str]) -> list[str]:
    """``names`` without repeats, an alias counting as the name it stands for (the first
    spelling given is kept)."""
    from fusion.core.backend import registry

    seen, distinct = set(), []
    for name in names:
        canonical = registry.aliases.get(name, name)
        if canonical not in seen:
            seen.add(canonical)
            distinct.append(name)
    return distinct


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect, so that every entry is seen
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    entries = config.stash.get(_EXPECTED, [])
    if not entries:
        return
    for item in items:
        for entry in entries:
            if entry.matches(item.nodeid):
                entry.matched += 1
                # strict or not follows pytest's own `xfail_strict` setting
                item.add_marker(pytest.mark.xfail(reason=entry.reason))
                break


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    unused = [e for e in config.stash.get(_EXPECTED, []) if not e.matched]
    if unused:
        terminalreporter.section("fusion: expected failures that matched no test")
        for entry in unused:
            terminalreporter.line(f"{entry.source}: {entry.test_id}")
