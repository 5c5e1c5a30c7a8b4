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
