"""What the conformance suite cannot see from outside: the storage itself."""

import math

import numpy as np
import pytest
from fusion_pylist.backend import ListArray, PyListBackend, fit, offsets, strides_of


def test_strides_and_offsets_walk_row_major():
    assert strides_of((2, 3, 4)) == [12, 4, 1]
    assert offsets(0, (2, 3), [3, 1]) == [0, 1, 2, 3, 4, 5]
    assert offsets(0, (3, 2), [1, 3]) == [0, 3, 1, 4, 2, 5]  # a transpose
    assert offsets(5, (2,), [-1]) == [5, 4]  # a flip
    assert offsets(0, (0, 3), [3, 1]) == []


@pytest.mark.parametrize("dtype, values, expected", [
    ("int32", [2**31, -(2**31) - 1, 7], [-(2**31), 2**31 - 1, 7]),
    ("int64", [2**63 + 5], [-(2**63) + 5]),
    ("float32", [0.1, 1e39], [float(np.float32(0.1)), math.inf]),
])
def test_fit_wraps_integers_and_rounds_float32(dtype, values, expected):
    assert fit(values, dtype) == expected


def test_results_are_new_lists():
    backend = PyListBackend()
    x = backend.from_numpy(np.arange(6, dtype=np.int64).reshape(2, 3))
    assert isinstance(x, ListArray) and x.shape == (2, 3)
    for out in (backend.permute(x, (1, 0)), backend.flip(x, (0,)), backend.neg(x)):
        assert out.items is not x.items
    assert x.items == [0, 1, 2, 3, 4, 5]


def pairs(values: list, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays that hold every ordered pair of ``values``."""
    x, y = np.meshgrid(np.array(values, dtype=dtype), np.array(values, dtype=dtype))
    return x.ravel(), y.ravel()


SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 0.5, math.inf, -math.inf, math.nan, 1e30, -1e30, 400.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method, reference", [
    ("pow", np.power), ("div", np.true_divide), ("maximum", np.maximum), ("mul", np.multiply),
])
def test_special_values_as_numpy(dtype, method, reference):
    """Every pair of special values (zeros of both signs, infinities, nan, overflow) gives
    numpy's result, sign of zero included: Python raises where IEEE does not."""
    x, y = pairs(SPECIAL, dtype)
    backend = PyListBackend()
    got = backend.to_numpy(getattr(backend, method)(backend.from_numpy(x), backend.from_numpy(y)))
    with np.errstate(all="ignore"):
        want = reference(x, y)
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
    exact = ~np.isnan(want)
    assert (np.signbit(got[exact]) == np.signbit(want[exact])).all()


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_extremes_as_numpy(dtype):
    info = np.iinfo(dtype)
    values = [0, 1, -1, 2, -7, 7, 31, info.max, info.min, 12345]
    x, y = pairs(values, dtype)
    backend = PyListBackend()
    for method, reference in [("div", np.floor_divide), ("mul", np.multiply), ("add", np.add)]:
        got = backend.to_numpy(getattr(backend, method)(backend.from_numpy(x),
                                                         backend.from_numpy(y)))
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(got, reference(x, y), err_msg=method)
