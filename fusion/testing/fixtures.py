"""The pytest plugin of the conformance suite: the ``backend`` fixture and capability skips.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["fusion.testing.fixtures"]``.

* ``backend``: the name of the backend under test. Every test asking for it runs once per
  backend: those named in ``FUSION_TEST_BACKENDS`` (comma-separated), else every installed one.
  A test class may pin its own list with a class attribute ``fusion_backends = ["mine"]``.
* ``@requires("float64")``: the test needs a capability (see ``Backend.capabilities``); a
  backend without it has the test skipped, the capability named in the reason.
* ``other_backend``: the name of a second, separate instance of the numpy backend, registered
  for the duration of one test (to check that tensors of two backends never mix silently).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import fusion
from fusion.core.backend import CAPABILITIES, DEFAULT_CAPABILITIES, registry
from fusion.core.dtypes import DType, to_dtype

BACKENDS_ENV = "FUSION_TEST_BACKENDS"
_MARK = "fusion_requires"
#: The dtypes that only some backends support, and the capability each needs.
_DTYPE_CAPABILITY = {"float64": "float64", "int64": "int64"}


def backend_names(config: pytest.Config | None = None) -> list[str]:
    """The backends to test: ``FUSION_TEST_BACKENDS`` if set, else every installed backend."""
    # ``config`` is accepted so that a command-line option can take precedence later.
    names = [n.strip() for n in os.environ.get(BACKENDS_ENV, "").split(",") if n.strip()]
    return list(dict.fromkeys(names)) or fusion.available_backends()  # each name once


def requires(*capabilities: str) -> pytest.MarkDecorator:
    """Mark a test as needing backend ``capabilities`` (e.g. ``@requires("views")``)."""
    unknown = set(capabilities) - CAPABILITIES
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    return getattr(pytest.mark, _MARK)(*capabilities)


def capabilities_of(backend: str) -> frozenset[str]:
    """The capabilities backend ``backend`` declares (all but ``fuse`` if it declares none)."""
    return frozenset(getattr(fusion.get_backend(backend), "capabilities", DEFAULT_CAPABILITIES))


def skip_unless_supported(backend: str, *needs: str | DType) -> None:
    """Skip the running test unless ``backend`` has every capability or dtype in ``needs``.

    >>> skip_unless_supported("numpy", "float64", fusion.int64)  # numpy has both: no skip
    """
    have = capabilities_of(backend)
    for need in needs:
        name = need.name if isinstance(need, DType) else need
        capability = _DTYPE_CAPABILITY.get(name, name)
        if capability in CAPABILITIES and capability not in have:
            pytest.skip(f"backend {backend!r} lacks capability {capability!r}")


def dtype_capability(dtype) -> str | None:
    """The capability a tensor of ``dtype`` needs, or None if every backend has it."""
    return _DTYPE_CAPABILITY.get(to_dtype(dtype).name)


# --- pytest hooks --------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{_MARK}(*capabilities): skip unless the backend under test has them")
    # inf and nan from log(0), 1/0 or exp overflow are results the suite asks for on purpose
    config.addinivalue_line(
        "filterwarnings",
        r"ignore:(divide by zero|overflow|invalid value|underflow) encountered:RuntimeWarning")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    names = getattr(metafunc.cls, "fusion_backends", None) or backend_names(metafunc.config)
    metafunc.parametrize("backend", list(names), indirect=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "backend" not in callspec.params:
        return
    needs = [c for mark in item.iter_markers(_MARK) for c in mark.args]
    if needs:
        skip_unless_supported(callspec.params["backend"], *needs)


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test (parametrized by :func:`pytest_generate_tests`)."""
    name = request.param
    fusion.get_backend(name)  # an unknown or broken backend fails here, with the registry's reason
    return name


@pytest.fixture
def other_backend() -> Iterator[str]:
    """A second numpy backend instance, registered under its own name for one test."""
    from fusion.backends.numpy import NumpyBackend

    name = "conformance_twin"
    registry.load()
    registry.register(name, NumpyBackend(), plugin="fusion.testing")
    try:
        yield name
    finally:
        registry.unregister(name)
