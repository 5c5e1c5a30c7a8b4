"""cumsum, tril, triu, roll, split and chunk against numpy, with gradients."""

from __future__ import annotations

import numpy as np
import pytest

import fusion

from ..oracle import assert_close, check_op


def _pair(fusion_fn, numpy_fn):
    return lambda *xs: fusion_fn(*xs) if isinstance(xs[0], fusion.Tensor) else numpy_fn(*xs)


def _np_split(x, sizes, axis):
    return np.split(x, np.cumsum(sizes)[:-1], axis)


class TestPositional:
    @pytest.mark.parametrize("shape, axis", [((3, 5, 7), 0), ((3, 5, 7), 1), ((3, 5, 7), -1),
                                             ((9,), 0), ((1, 1), 1), ((2, 0, 3), 1),
                                             ((4, 33), 1)])
    def test_cumsum(self, backend, shape, axis):
        check_op(backend, [shape], _pair(lambda x: x.cumsum(axis),
                                         lambda x: np.cumsum(x, axis)))

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float64"])
    def test_cumsum_dtypes(self, backend, dtype):
        check_op(backend, [(3, 6)], _pair(lambda x: x.cumsum(1), lambda x: np.cumsum(x, 1)),
                 dtype=dtype, expect_dtype="int64" if dtype in ("bool", "int32") else dtype)

    def test_cumsum_of_non_finite_values(self, backend):
        values = np.array([1.0, np.inf, 2.0, -np.inf, 3.0, np.nan, 4.0], np.float32)
        got = fusion.Tensor(values, backend=backend).cumsum().numpy()
        assert_close(got, np.cumsum(values), "float32", 0, 0)
        values = np.array([-0.0, -0.0, 1.0], np.float32)
        got = fusion.Tensor(values, backend=backend).cumsum().numpy()
        assert np.signbit(got[:2]).all() and got[2] == 1.0

    @pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
    @pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5), (5, 2)])
    def test_tril_triu(self, backend, shape, k):
        check_op(backend, [shape], _pair(lambda x: x.tril(k), lambda x: np.tril(x, k)))
        check_op(backend, [shape], _pair(lambda x: x.triu(k), lambda x: np.triu(x, k)))

    @pytest.mark.parametrize("dtype", ["bool", "int32"])
    def test_tril_triu_dtypes(self, backend, dtype):
        check_op(backend, [(3, 4)], _pair(lambda x: x.triu(1), lambda x: np.triu(x, 1)),
                 dtype=dtype)
        check_op(backend, [(3, 4)], _pair(lambda x: x.tril(), np.tril), dtype=dtype)

    def test_tril_keeps_non_finite_values_above_and_zeroes_them_below(self, backend):
        values = np.array([[np.inf, np.nan], [1.0, -np.inf]], np.float32)
        got = fusion.Tensor(values, backend=backend).triu().numpy()
        assert_close(got, np.triu(values), "float32", 0, 0)

    @pytest.mark.parametrize("shifts, axis", [(1, None), (-3, None), (2, 1), (7, -1),
                                              ((1, -2), (0, 2)), ((2, 1), (1, 1)), (0, 0)])
    def test_roll(self, backend, shifts, axis):
        check_op(backend, [(3, 4, 5)], _pair(lambda x: x.roll(shifts, axis),
                                             lambda x: np.roll(x, shifts, axis)))

    @pytest.mark.parametrize("size, sizes", [(2, [2, 2, 1]), (5, [5]), (7, [5]), (1, [1] * 5),
                                             ([1, 0, 4], [1, 0, 4])])
    def test_split(self, backend, size, sizes):
        for i in range(len(sizes)):
            check_op(backend, [(3, 5)], _pair(lambda x, i=i: x.split(size, 1)[i],
                                              lambda x, i=i: _np_split(x, sizes, 1)[i]))
        x = fusion.zeros(3, 5, backend=backend)
        assert [p.shape[1] for p in x.split(size, 1)] == sizes

    @pytest.mark.parametrize("chunks, sizes", [(3, [2, 2, 1]), (2, [3, 2]), (5, [1] * 5),
                                               (4, [2, 2, 1]), (9, [1] * 5)])
    def test_chunk(self, backend, chunks, sizes):
        x = fusion.Tensor(np.arange(10.0).reshape(5, 2), backend=backend)
        pieces = x.chunk(chunks)
        assert [p.shape[0] for p in pieces] == sizes
        for piece, expected in zip(pieces, _np_split(np.arange(10.0).reshape(5, 2), sizes, 0),
                                   strict=True):
            np.testing.assert_array_equal(piece.numpy(), expected)
        check_op(backend, [(5, 2)], _pair(lambda t: t.chunk(chunks)[-1],
                                          lambda a: _np_split(a, sizes, 0)[-1]))

    def test_bad_arguments(self, backend):
        x = fusion.zeros(3, 4, backend=backend)
        with pytest.raises(ValueError, match="add up to 4"):
            x.split([1, 2], 1)
        with pytest.raises(ValueError, match="positive"):
            x.split(0)
        with pytest.raises(ValueError, match="at least 1 chunk"):
            x.chunk(0)
        with pytest.raises(ValueError, match="at least 2 dimensions"):
            fusion.zeros(3, backend=backend).tril()
        with pytest.raises(ValueError, match="one shift per axis"):
            x.roll((1, 2), 0)
