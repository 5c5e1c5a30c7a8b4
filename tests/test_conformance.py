"""The conformance suite shipped in fusion.testing, run against every installed backend
(or those named in FUSION_TEST_BACKENDS), and tests of the suite's own machinery."""

import numpy as np
import pytest

import fusion
from fusion.backends.numpy import NumpyBackend
from fusion.core import autograd
from fusion.core.backend import registry
from fusion.testing import backend_names, check_op, requires
from fusion.testing.suite import *  # noqa: F403  (pytest collects the imported Test classes)

# --- the suite's own machinery --------------------------------------------------------------


class Float32Only(NumpyBackend):
    capabilities = frozenset({"int64"})


@pytest.fixture
def float32_only():
    registry.load()
    registry.register("float32_only", Float32Only, plugin="test_conformance")
    yield "float32_only"
    registry.unregister("float32_only")


def test_oracle_catches_a_wrong_gradient(monkeypatch):
    monkeypatch.setattr(autograd.Sin, "backward", lambda self, grad: grad)
    with pytest.raises(AssertionError, match="gradient of input 0"):
        check_op("numpy", [(3, 2)], lambda x: x.sin(), np.sin)


def test_oracle_catches_wrong_values_dtypes_shapes_and_missing_graphs():
    with pytest.raises(AssertionError, match="Not equal"):
        check_op("numpy", [(3,)], lambda x: x.exp(), np.exp2)
    with pytest.raises(AssertionError, match="dtype float64, expected float32"):
        check_op("numpy", [(3,)], lambda x: x.cast("float64"), lambda a: a)
    with pytest.raises(AssertionError, match="shape"):
        check_op("numpy", [(3, 1)], lambda x: x.reshape(3), lambda a: a)
    with pytest.raises(AssertionError, match="not differentiable"):
        check_op("numpy", [(3,)], lambda x: x.detach() * 2, lambda a: a * 2)


def test_oracle_on_a_backend_without_float64(float32_only):
    out = check_op(float32_only, [(3, 4)], lambda x: x.tanh().sum(0), lambda a: np.tanh(a).sum(0))
    assert out.backend == "float32_only"
    with pytest.raises(pytest.skip.Exception, match="lacks capability 'float64'"):
        check_op(float32_only, [(3,)], lambda x: x, dtype="float64")


def test_backend_names(monkeypatch):
    monkeypatch.setenv("FUSION_TEST_BACKENDS", " numpy, numba ,")
    assert backend_names() == ["numpy", "numba"]
    monkeypatch.delenv("FUSION_TEST_BACKENDS")
    assert backend_names() == fusion.available_backends()
    with pytest.raises(ValueError, match="bogus"):
        requires("bogus")


def test_capability_skips_show_the_reason(pytester, float32_only):
    pytester.makeconftest('pytest_plugins = ["fusion.testing.fixtures"]')
    pytester.makepyfile(
        """
        from fusion.testing import requires

        class TestMine:
            fusion_backends = ["float32_only"]

            @requires("float64")
            def test_needs_float64(self, backend):
                raise AssertionError("ran without the capability")

            @requires("int64")
            def test_needs_int64(self, backend):
                assert backend == "float32_only"
        """
    )
    result = pytester.runpytest_inprocess("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*backend 'float32_only' lacks capability 'float64'*"])
