"""The backend registry: plugins through the hook, its errors, aliases, and selection order.

Plugins are modules made in the test and found through in-memory entry points, loaded by a
fresh Registry, so nothing is installed and the process-wide registry is left alone (except
where a test needs it, and then it unregisters what it added).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import threading
import types
from importlib.metadata import EntryPoint, entry_points

import numpy as np
import pytest

import fusion
from fusion.backends.numpy import NumpyBackend
from fusion.core import backend as backend_module
from fusion.core import hookspecs
from fusion.core.backend import (
    Backend,
    BackendError,
    BackendNotFoundError,
    BackendRegistrationError,
    Registry,
    missing_primitives,
    registry,
)
from fusion.core.ops import REQUIRED_METHODS


class MyBackend(NumpyBackend):
    """A third party's backend (numpy underneath, to keep the test about registration)."""

    version = "9.9"
    capabilities = frozenset({"float64"})


class HalfBackend(Backend):
    """Implements every primitive except ``sin`` and ``flip``."""


for _name in REQUIRED_METHODS:
    if _name not in ("sin", "flip"):
        setattr(HalfBackend, _name, getattr(NumpyBackend, _name))


class BrokenStartBackend(NumpyBackend):
    def __init__(self):
        raise OSError("no device found")


@pytest.fixture
def make_plugin(monkeypatch):
    """Make an importable plugin module whose hook calls ``body(register)``; return its entry
    point."""
    counter = iter(range(1000))

    def make(body, entry_name: str = "mine") -> EntryPoint:
        module_name = f"fusion_test_plugin_{next(counter)}"
        module = types.ModuleType(module_name)

        @fusion.hookimpl
        def fusion_register_backends(register):
            body(register)

        module.fusion_register_backends = fusion_register_backends
        monkeypatch.setitem(sys.modules, module_name, module)
        return EntryPoint(name=entry_name, value=module_name, group="fusion.backends")

    return make


def _loaded(*eps: EntryPoint) -> Registry:
    fresh = Registry()
    fresh.load(eps=list(eps))
    return fresh


# --- registration through the hook --------------------------------------------------------
def test_a_plugin_registers_a_backend_through_the_hook(make_plugin):
    ep = make_plugin(lambda register: register("mine", MyBackend))
    reg = _loaded(ep)
    assert {"mine", "numpy"} <= set(reg.names())
    instance = reg.get("mine")
    assert isinstance(instance, MyBackend) and instance.name == "mine"
    assert reg.get("mine") is instance  # one instance, made on first use
    entry = reg.entries["mine"]
    assert entry.plugin == "mine" and entry.version == "9.9" and entry.status == "ready"


def test_backends_start_lazily(make_plugin):
    started = []

    class Counting(NumpyBackend):
        def __init__(self):
            started.append(1)

    reg = _loaded(make_plugin(lambda register: register("counting", Counting)))
    assert started == [] and reg.entries["counting"].status == "not started"
    reg.get("counting")
    reg.get("counting")
    assert started == [1]


def test_an_instance_may_be_registered(make_plugin):
    instance = MyBackend()
    reg = _loaded(make_plugin(lambda register: register("mine", instance, version="1.0")))
    assert reg.get("mine") is instance and reg.entries["mine"].version == "1.0"


def test_loading_is_idempotent(make_plugin):
    calls = []
    ep = make_plugin(lambda register: calls.append(register("mine", MyBackend)))
    reg = Registry()
    reg.load(eps=[ep])
    reg.load(eps=[ep])
    reg.names()
    assert len(calls) == 1


def test_a_registered_backend_runs_tensors():
    """Through the process-wide registry and the same hook path a plugin takes."""
    module = types.ModuleType("fusion_test_plugin_global")

    @fusion.hookimpl
    def fusion_register_backends(register):
        register("mine_global", MyBackend, aliases=("mg",))

    module.fusion_register_backends = fusion_register_backends
    registry.load()
    registry._load_plugin("mine_global", lambda: module, None)
    try:
        x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend="mine_global")
        (x * x).sum().backward()
        assert x.backend == "mine_global" and x.grad.backend == "mine_global"
        np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
        assert fusion.ones(2, backend="mg").backend == "mine_global"
        assert "mine_global" in fusion.available_backends()
        row = next(r for r in fusion.backend_info() if r["name"] == "mine_global")
        assert row["version"] == "9.9" and row["aliases"] == ["mg"]
    finally:
        registry.unregister("mine_global")
    assert "mine_global" not in fusion.available_backends()
    with pytest.raises(BackendNotFoundError):
        fusion.get_backend("mg")


# --- the three errors ---------------------------------------------------------------------
def test_unknown_name_lists_the_installed_backends(make_plugin):
    reg = _loaded(make_plugin(lambda register: register("mine", MyBackend)))
    with pytest.raises(BackendNotFoundError) as info:
        reg.get("nope")
    message = str(info.value)
    assert "'nope'" in message and "mine" in message and "numpy" in message
    for select in (fusion.get_backend, fusion.set_backend,
                   lambda name: fusion.use_backend(name).__enter__()):
        with pytest.raises(BackendNotFoundError, match="numpy"):
            select("nope")
    assert issubclass(BackendNotFoundError, LookupError)


def test_a_broken_plugin_is_named_and_the_others_still_load(make_plugin, monkeypatch):
    monkeypatch.delenv(backend_module.STRICT_ENV, raising=False)
    missing = EntryPoint(name="ghost", value="fusion_test_no_such_module", group="fusion.backends")

    def explode(register):
        raise RuntimeError("boom in the hook")

    raising = make_plugin(explode, entry_name="exploding")
    good = make_plugin(lambda register: register("mine", MyBackend))
    with pytest.warns(RuntimeWarning) as caught:
        reg = _loaded(missing, raising, good)
    messages = " | ".join(str(w.message) for w in caught)
    assert "'ghost'" in messages and "ModuleNotFoundError" in messages
    assert "'exploding'" in messages and "boom in the hook" in messages
    assert {f.plugin for f in reg.failures} == {"ghost", "exploding"}
    assert "mine" in reg.names() and "numpy" in reg.names()
    np.testing.assert_array_equal(reg.get("mine").add(np.ones(2), np.ones(2)), [2.0, 2.0])


def test_strict_mode_raises_on_a_broken_plugin(monkeypatch):
    monkeypatch.setenv(backend_module.STRICT_ENV, "1")
    missing = EntryPoint(name="ghost", value="fusion_test_no_such_module", group="fusion.backends")
    with pytest.raises(BackendError, match="'ghost'"):
        _loaded(missing)


def test_missing_primitives_are_refused_with_their_names(make_plugin, monkeypatch):
    monkeypatch.delenv(backend_module.STRICT_ENV, raising=False)
    assert missing_primitives(HalfBackend) == ["sin", "flip"]
    assert missing_primitives(NumpyBackend) == []
    with pytest.raises(BackendRegistrationError) as info:
        Registry().register("half", HalfBackend, plugin="halfplugin")
    assert "sin" in str(info.value) and "flip" in str(info.value)
    assert "halfplugin" in str(info.value)
    with pytest.warns(RuntimeWarning, match="sin, flip"):
        reg = _loaded(make_plugin(lambda register: register("half", HalfBackend), "halfplugin"))
    assert "half" not in reg.names()
    assert reg.failures[0].plugin == "halfplugin"


def test_a_backend_that_cannot_start(make_plugin):
    reg = _loaded(make_plugin(lambda register: register("nodevice", BrokenStartBackend)))
    with pytest.raises(BackendError, match="no device found") as info:
        reg.get("nodevice")
    assert "'nodevice'" in str(info.value)
    assert reg.entries["nodevice"].status.startswith("unavailable")
    assert reg.get("numpy") is not None


# --- names --------------------------------------------------------------------------------
@pytest.mark.parametrize("taken", ["numpy", "numba"])
def test_built_in_names_are_refused(make_plugin, monkeypatch, taken):
    monkeypatch.delenv(backend_module.STRICT_ENV, raising=False)
    with pytest.warns(RuntimeWarning, match="built-in"):
        reg = _loaded(make_plugin(lambda register: register(taken, MyBackend), "impostor"))
    assert not isinstance(reg.get("numpy"), MyBackend)
    with pytest.raises(BackendRegistrationError, match="built-in"):
        Registry().register("x", MyBackend, aliases=(taken,))


def test_a_name_two_plugins_register_is_refused_to_both(make_plugin, monkeypatch):
    monkeypatch.delenv(backend_module.STRICT_ENV, raising=False)
    first = make_plugin(lambda register: register("same", MyBackend), "first")
    second = make_plugin(lambda register: register("same", NumpyBackend), "second")
    with pytest.warns(RuntimeWarning) as caught:
        reg = _loaded(first, second)
    message = str(caught[0].message)
    assert "'second'" in message and "'first'" in message and "'same'" in message
    # the first one found does not silently win: which one is meant is the user's choice
    with pytest.raises(BackendError, match="'same'.*'first'.*'second'.*uninstall one"):
        reg.get("same")


def test_aliases():
    reg = Registry()
    reg.register("mine", MyBackend, aliases=("mn", "my_backend"))
    assert reg.get("mn") is reg.get("mine") is reg.get("my_backend")
    with pytest.raises(BackendRegistrationError, match="'mn'"):
        reg.register("other", NumpyBackend, aliases=("mn",))
    with pytest.raises(BackendRegistrationError, match="'my_backend'"):
        reg.register("my_backend", NumpyBackend)
    reg.unregister("mn")  # by an alias
    assert "mine" not in reg.entries and "mn" not in reg.aliases
    assert fusion.get_backend("np") is fusion.get_backend("numpy")  # numpy's own alias


@pytest.mark.parametrize("bad", ["", "has space", "3d", "with-dash", 7])
def test_names_must_be_identifiers(bad):
    with pytest.raises(BackendRegistrationError, match="identifier"):
        Registry().register(bad, MyBackend)


def test_shipped_backends_are_declared_as_entry_points():
    eps = {ep.name: ep.value for ep in entry_points(group="fusion.backends")}
    assert eps.get("numpy") == "fusion.backends.numpy"
    assert eps.get("numba") == "fusion.backends.numba"
    registry.load()
    assert registry.entries["numpy"].plugin == "numpy"  # found through its entry point


def test_every_hook_is_documented():
    specs = [f for name, f in vars(hookspecs).items()
             if name.startswith("fusion_") and callable(f)]
    assert specs, "no hookspecs found"
    for spec in specs:
        doc = inspect.getdoc(spec) or ""
        assert doc, f"hook {spec.__name__} has no docstring"
        for parameter in inspect.signature(spec).parameters:
            assert f":param {parameter}:" in doc, f"{spec.__name__} leaves {parameter} undocumented"


# --- selection ----------------------------------------------------------------------------
@pytest.fixture
def selection(monkeypatch):
    """A second backend 'numpy_b', and the selection state reset: no set_backend, no env."""
    registry.load()
    registry.register("numpy_b", NumpyBackend(), plugin="test_registry")
    monkeypatch.setattr(backend_module, "_global_backend", None)
    monkeypatch.setattr(backend_module, "_env_backend", None)
    monkeypatch.setattr(backend_module, "_env_read", False)
    monkeypatch.delenv("FUSION_BACKEND", raising=False)
    yield
    registry.unregister("numpy_b")


def _made_on() -> str:
    return fusion.ones(1).backend


def test_default_is_numpy(selection):
    assert _made_on() == "numpy" and fusion.get_backend().name == "numpy"


def test_environment_variable(selection, monkeypatch):
    monkeypatch.setenv("FUSION_BACKEND", "numpy_b")
    assert _made_on() == "numpy_b"
    monkeypatch.setenv("FUSION_BACKEND", "numpy")  # read once, at first use
    assert _made_on() == "numpy_b"


def test_environment_variable_with_an_unknown_name(selection, monkeypatch):
    monkeypatch.setenv("FUSION_BACKEND", "nope")
    with pytest.raises(BackendNotFoundError, match="numpy_b"):
        fusion.ones(1)


def test_precedence(selection, monkeypatch):
    monkeypatch.setenv("FUSION_BACKEND", "numpy_b")
    fusion.set_backend("numpy")  # beats the environment
    assert _made_on() == "numpy"
    with fusion.use_backend("numpy_b") as chosen:  # beats set_backend
        assert chosen.name == "numpy_b" and _made_on() == "numpy_b"
        with fusion.use_backend("numpy"):
            assert _made_on() == "numpy"
        assert _made_on() == "numpy_b"
        # an explicit argument beats everything
        assert fusion.ones(1, backend="numpy").backend == "numpy"
        assert fusion.Tensor([1.0], backend="numpy").backend == "numpy"
    assert _made_on() == "numpy"


def test_use_backend_is_per_thread(selection):
    seen = []
    with fusion.use_backend("numpy_b"):
        thread = threading.Thread(target=lambda: seen.append(_made_on()))
        thread.start()
        thread.join()
        assert _made_on() == "numpy_b"
    assert seen == ["numpy"]


def test_use_backend_restores_after_an_error(selection):
    with pytest.raises(KeyError):
        with fusion.use_backend("numpy_b"):
            raise KeyError("inside")
    assert _made_on() == "numpy"


def test_get_backend_accepts_an_instance():
    instance = fusion.get_backend("numpy")
    assert fusion.get_backend(instance) is instance


# --- import cost --------------------------------------------------------------------------
def test_import_fusion_is_light():
    code = (
        "import sys, fusion\n"
        "from fusion.core.backend import registry\n"
        "print(registry.loaded, 'numba' in sys.modules, 'matplotlib' in sys.modules)\n"
        "fusion.available_backends(); fusion.ones(2) + 1\n"
        "print('numba' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={"PATH": "", "FUSION_BACKEND": "numpy"})
    # nothing scanned at import; numba waits until its backend is used, matplotlib until a plot
    assert result.stdout.split() == ["False", "False", "False", "False", "False"], result
