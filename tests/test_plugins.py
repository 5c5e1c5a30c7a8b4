"""Plugin discovery and its failure modes, with in-memory entry points and a fresh Registry.

Each plugin here is a real module file on a temporary ``sys.path`` entry, named by an
``importlib.metadata.EntryPoint`` built in memory: discovery runs exactly as for an installed
package, and nothing is installed.
"""

from __future__ import annotations

import inspect
import io
import itertools
import os
import subprocess
import sys
import textwrap
import warnings
from importlib.metadata import EntryPoint, distributions
from pathlib import Path

import numpy as np
import pytest

import fusion
import fusion.core.backend as backend_module
from fusion.__main__ import info
from fusion.core import hookspecs
from fusion.core.backend import (
    ENTRY_POINT_GROUP,
    STRICT_ENV,
    BackendError,
    BackendRegistrationError,
    Registry,
)
from fusion.core.markers import PROJECT

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "backends.md"

GOOD = """
    from fusion import hookimpl
    from fusion.backends.numpy import NumpyBackend

    class GoodBackend(NumpyBackend):
        version = "1.2.3"

    @hookimpl
    def fusion_register_backends(register):
        register("good", GoodBackend, aliases=("goodie",))
"""
RAISES_AT_IMPORT = """
    raise ImportError("libmagic.so.1: cannot open shared object file")
"""
INCOMPLETE = """
    from fusion import Backend, hookimpl

    class HalfBackend(Backend):
        def neg(self, x):
            return -x

    @hookimpl
    def fusion_register_backends(register):
        register("half", HalfBackend)
"""
CLAIMS_BUILTIN = """
    from fusion import hookimpl
    from fusion.backends.numpy import NumpyBackend

    class Impostor(NumpyBackend):
        pass

    @hookimpl
    def fusion_register_backends(register):
        register("numpy", Impostor)
"""
TWIN = """
    from fusion import hookimpl
    from fusion.backends.numpy import NumpyBackend

    class Twin(NumpyBackend):
        pass

    @hookimpl
    def fusion_register_backends(register):
        register("twin", Twin)
"""
RAISES_IN_HOOK = """
    from fusion import hookimpl

    @hookimpl
    def fusion_register_backends(register):
        raise RuntimeError("no device found")
"""

_counter = itertools.count()


@pytest.fixture
def make_plugin(tmp_path, monkeypatch):
    """``make_plugin(source, name=None)``: an entry point of group ``fusion.backends`` naming
    a new module with that source. The entry point's name is the plugin's name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = []

    def make(source: str, name: str | None = None) -> EntryPoint:
        module = f"fusion_test_plugin_{next(_counter)}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        modules.append(module)
        return EntryPoint(name=name or module, value=module, group=ENTRY_POINT_GROUP)

    yield make
    for module in modules:
        sys.modules.pop(module, None)


def write_package(folder: Path, dist: str, version: str, source: str, plugin: str) -> str:
    """A module and the ``dist-info`` folder of an installed distribution ``dist`` declaring it
    as plugin ``plugin`` of group ``fusion.backends``, in ``folder``; returns the module name."""
    module = f"fusion_test_plugin_{next(_counter)}"
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{plugin} = {module}\n")
    return module


@pytest.fixture
def make_package(tmp_path, monkeypatch):
    """``make_package(dist, version, source, plugin)``: the entry point of a distribution
    installed on a temporary ``sys.path`` entry, as ``importlib.metadata`` finds it (so that
    the package that declares it is known)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = []

    def make(dist: str, version: str, source: str, plugin: str) -> EntryPoint:
        modules.append(write_package(tmp_path, dist, version, source, plugin))
        found = [ep for d in distributions(path=[str(tmp_path)]) if d.metadata["Name"] == dist
                 for ep in d.entry_points if ep.group == ENTRY_POINT_GROUP]
        assert len(found) == 1
        return found[0]

    yield make
    for module in modules:
        sys.modules.pop(module, None)


def load_quietly(registry: Registry, eps: list[EntryPoint]) -> list[str]:
    """Load ``eps`` into ``registry``; returns the warning messages it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.load(eps)
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def assert_still_works(registry: Registry) -> None:
    """The built-in backends and the good plugin are registered and compute."""
    assert {"numpy", "good"} <= set(registry.names())
    assert registry.entries["numpy"].plugin == "numpy"  # the real one, not an impostor
    good = registry.get("good")
    x = good.from_numpy(np.array([1.0, 2.0], dtype=np.float32))
    np.testing.assert_array_equal(good.to_numpy(good.add(x, x)), [2.0, 4.0])


# --- one broken plugin among good ones -----------------------------------------------------
def test_plugin_that_raises_at_import(make_plugin):
    registry = Registry()
    eps = [make_plugin(RAISES_AT_IMPORT, "fusion-broken"), make_plugin(GOOD)]
    messages = load_quietly(registry, eps)
    assert len(messages) == 1
    assert "'fusion-broken'" in messages[0] and "libmagic.so.1" in messages[0]
    assert [f.plugin for f in registry.failures] == ["fusion-broken"]
    assert "ImportError" in registry.failures[0].error
    assert_still_works(registry)


def test_a_broken_plugin_costs_nothing_when_warnings_are_errors(make_plugin):
    registry = Registry()
    eps = [make_plugin(RAISES_AT_IMPORT, "fusion-broken"), make_plugin(GOOD)]
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("error")
        registry.load(eps)  # raises nothing: the warning is shown, not raised
        assert_still_works(registry)
    assert [str(w.message) for w in shown if "fusion-broken" in str(w.message)]
    assert [f.plugin for f in registry.failures] == ["fusion-broken"]


def test_a_broken_plugin_costs_nothing_under_python_w_error(tmp_path):
    # a real entry point of an installed distribution, in a fresh interpreter that turns every
    # warning into an error: the first lookup works, and so does every later one
    write_package(tmp_path, "fusion-broken", "0.1", RAISES_AT_IMPORT, "broken")
    code = ("import fusion\n"
            "print(fusion.ones(2).sum().item())\n"
            "print(fusion.available_backends())\n"
            "print(fusion.Tensor([1.0], backend='numpy').backend)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop(STRICT_ENV, None)
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    total, names, backend = done.stdout.splitlines()
    assert float(total) == 2.0 and "numpy" in names and backend == "numpy"
    assert "'broken' failed and was skipped: ImportError: libmagic.so.1" in done.stderr


def test_plugin_naming_a_missing_module(make_plugin):
    registry = Registry()
    missing = EntryPoint("ghost", "fusion_no_such_module_anywhere", ENTRY_POINT_GROUP)
    messages = load_quietly(registry, [missing, make_plugin(GOOD)])
    assert len(messages) == 1 and "'ghost'" in messages[0]
    assert "fusion_no_such_module_anywhere" in messages[0]
    assert_still_works(registry)


def test_plugin_whose_hook_raises(make_plugin):
    registry = Registry()
    messages = load_quietly(registry, [make_plugin(RAISES_IN_HOOK, "nodevice"), make_plugin(GOOD)])
    assert len(messages) == 1 and "'nodevice'" in messages[0] and "no device found" in messages[0]
    assert_still_works(registry)


def test_plugin_with_an_incomplete_backend(make_plugin):
    registry = Registry()
    messages = load_quietly(registry, [make_plugin(INCOMPLETE, "halfdone"), make_plugin(GOOD)])
    assert len(messages) == 1
    message = messages[0]
    assert "'halfdone'" in message and "'half'" in message
    # every missing primitive is named, the one it has is not
    assert "lacks the primitives" in message and "reduce_sum" in message
    assert "from_numpy" in message and "neg," not in message
    assert "half" not in registry.names()
    assert_still_works(registry)


def test_plugin_claiming_a_builtin_name(make_plugin):
    registry = Registry()
    messages = load_quietly(registry, [make_plugin(CLAIMS_BUILTIN, "impostor"), make_plugin(GOOD)])
    assert len(messages) == 1
    assert "'impostor'" in messages[0] and "built-in backend" in messages[0]
    assert type(registry.get("numpy")).__name__ == "NumpyBackend"
    assert_still_works(registry)


def test_two_plugins_claiming_one_name_is_an_error_naming_both_packages(make_package):
    registry = Registry()
    eps = [make_package("fusion-twin-a", "1.0", TWIN, "first-twin"),
           make_package("fusion-twin-b", "2.0", TWIN, "second-twin"),
           make_package("fusion-good", "0.3", GOOD, "good")]
    messages = load_quietly(registry, eps)
    assert len(messages) == 1  # one warning for the clash, naming both plugins and packages
    for part in ("'twin'", "'first-twin' (fusion-twin-a 1.0)", "'second-twin' (fusion-twin-b 2.0)"):
        assert part in messages[0]
    # neither silently wins: selecting the name is an error that names both packages
    assert "twin" not in registry.names()
    with pytest.raises(BackendError, match="fusion-twin-a 1.0.*fusion-twin-b 2.0"):
        registry.get("twin")
    assert {f.plugin for f in registry.failures} == {"first-twin", "second-twin"}
    assert_still_works(registry)


def test_a_third_plugin_claiming_a_contested_name_is_refused(make_plugin):
    registry = Registry()
    eps = [make_plugin(TWIN, "a"), make_plugin(TWIN, "b"), make_plugin(TWIN, "c"),
           make_plugin(GOOD)]
    load_quietly(registry, eps)
    assert "twin" not in registry.names()
    assert {f.plugin for f in registry.failures} == {"a", "b", "c"}
    assert_still_works(registry)


def test_a_plugin_cannot_take_a_builtin_alias(make_plugin):
    registry = Registry()
    source = TWIN.replace('register("twin", Twin)', 'register("twin", Twin, aliases=("np",))')
    messages = load_quietly(registry, [make_plugin(source, "takes-np"), make_plugin(GOOD)])
    assert len(messages) == 1 and "'np'" in messages[0] and "built-in" in messages[0]
    assert registry.entries[registry.aliases["np"]].name == "numpy"  # numpy keeps its alias
    assert_still_works(registry)


def test_unknown_backend_says_which_plugin_of_that_name_failed_and_why(make_plugin):
    registry = Registry()
    load_quietly(registry, [make_plugin(RAISES_AT_IMPORT, "mine"),
                            make_plugin(INCOMPLETE, "halfdone"), make_plugin(GOOD)])
    with pytest.raises(fusion.BackendNotFoundError) as raised:
        registry.get("mine")  # the plugin's name
    message = str(raised.value)
    assert "unknown backend 'mine'" in message and "plugin 'mine'" in message
    assert "failed to load: ImportError: libmagic.so.1" in message
    assert "installed backends: " in message and "numpy" in message
    with pytest.raises(fusion.BackendNotFoundError, match="'halfdone' failed.*lacks the prim"):
        registry.get("half")  # the backend's name, which the plugin tried to register
    with pytest.raises(fusion.BackendNotFoundError) as raised:
        registry.get("nothing_by_that_name")
    assert "failed" not in str(raised.value)


def test_an_alias_cannot_take_a_registered_name(make_plugin):
    registry = Registry()
    load_quietly(registry, [make_plugin(GOOD)])
    with pytest.raises(BackendRegistrationError, match="'late'.*'goodie'.*taken by plugin"):
        registry.register("other", registry.entries["good"].factory, aliases=("goodie",),
                          plugin="late")


@pytest.mark.parametrize("source", [RAISES_AT_IMPORT, INCOMPLETE, CLAIMS_BUILTIN])
def test_strict_mode_raises_naming_the_plugin(make_plugin, monkeypatch, source):
    monkeypatch.setenv(STRICT_ENV, "1")
    registry = Registry()
    with pytest.raises(BackendError, match="backend plugin 'strictly-broken' failed"):
        registry.load([make_plugin(source, "strictly-broken")])


def test_strict_mode_loads_every_plugin_then_raises_with_the_cause(make_plugin, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    registry = Registry()
    eps = [make_plugin(RAISES_AT_IMPORT, "first-broken"), make_plugin(GOOD),
           make_plugin(RAISES_IN_HOOK, "second-broken")]
    with pytest.raises(BackendError, match="'first-broken' failed.*'second-broken' failed") \
            as raised:
        registry.load(eps)
    assert isinstance(raised.value.__cause__, ImportError)  # the traceback is the plugin's
    assert_still_works(registry)


def test_strict_mode_off_with_zero(make_plugin, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "0")
    registry = Registry()
    assert len(load_quietly(registry, [make_plugin(RAISES_AT_IMPORT)])) == 1


def test_loading_is_idempotent(make_plugin):
    registry = Registry()
    eps = [make_plugin(RAISES_AT_IMPORT), make_plugin(GOOD)]
    load_quietly(registry, eps)
    assert load_quietly(registry, eps) == []  # no second import, no second warning
    assert len(registry.failures) == 1


def test_versions_and_aliases(make_plugin):
    registry = Registry()
    load_quietly(registry, [make_plugin(GOOD)])
    entry = registry.entries["good"]
    assert entry.version == "1.2.3"  # the backend class's own version attribute
    assert entry.aliases == ("goodie",)
    assert registry.get("goodie") is registry.get("good")


# --- what the user sees ------------------------------------------------------------------
def test_info_reports_every_backend_and_every_failure(make_plugin, monkeypatch):
    registry = Registry()
    load_quietly(registry, [make_plugin(RAISES_AT_IMPORT, "fusion-broken"), make_plugin(GOOD)])
    monkeypatch.setattr(backend_module, "registry", registry)
    out = io.StringIO()
    assert info(out=out) == 1  # a failed plugin makes the check fail
    table = out.getvalue().splitlines()
    assert table[0].split() == ["name", "version", "plugin", "package", "status"]
    good = next(line for line in table if line.startswith("good"))
    assert "(goodie)" in good and "1.2.3" in good and good.endswith("ready")
    broken = next(line for line in table if "fusion-broken" in line)
    assert "failed: ImportError: libmagic.so.1" in broken


def test_info_without_failures_succeeds(make_plugin, monkeypatch):
    registry = Registry()
    load_quietly(registry, [make_plugin(GOOD)])
    monkeypatch.setattr(backend_module, "registry", registry)
    out = io.StringIO()
    assert info(as_json=True, out=out) == 0
    assert '"name": "good"' in out.getvalue() and '"status": "ready"' in out.getvalue()


def test_backend_info_names_the_package():
    rows = {row["name"]: row for row in fusion.backend_info()}
    assert rows["numpy"]["plugin"] == "numpy"
    assert rows["numpy"]["package"].startswith("fusion")
    assert rows["numpy"]["version"] == np.__version__


# --- the hooks are documented --------------------------------------------------------------
def hookspec_functions() -> dict:
    marker = f"{PROJECT}_spec"
    return {name: obj for name, obj in vars(hookspecs).items()
            if callable(obj) and hasattr(obj, marker)}


def test_there_are_hookspecs():
    assert "fusion_register_backends" in hookspec_functions()


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hookspec_is_documented(name):
    spec = hookspec_functions()[name]
    doc = inspect.getdoc(spec) or ""
    assert doc.strip(), f"hookspec {name} has no docstring"
    for param in inspect.signature(spec).parameters:
        assert f":param {param}:" in doc, f"hookspec {name}: argument {param!r} is undocumented"
    assert DOCS.exists(), f"{DOCS} is missing"
    assert f"`{name}" in DOCS.read_text(encoding="utf-8"), (
        f"hookspec {name} is not documented in docs/backends.md")
