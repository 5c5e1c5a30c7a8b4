"""Advanced indexing, gather, scatter_add and index_select against numpy, with gradients; picks
must select (an inf or nan elsewhere never reaches a picked value)."""

from __future__ import annotations

import numpy as np
import pytest

import fusion

from ..oracle import assert_close, check_op

INF, NAN = np.inf, np.nan
_MASK_2D = np.random.default_rng(3).random((4, 5)) < 0.4
_MASK_1D = np.array([True, False, True, True, False, False])


def _pair(fusion_fn, numpy_fn):
    return lambda *xs: fusion_fn(*xs) if isinstance(xs[0], fusion.Tensor) else numpy_fn(*xs)


# numpy's advanced indexing on a (4, 5, 6) array: lists and arrays index both sides alike
ADVANCED = [
    ("two_lists", lambda x: x[[0, 2, 3], [1, 4, 0]]),
    ("three_lists", lambda x: x[[0, 3], [1, 4], [5, 0]]),
    ("broadcast", lambda x: x[[[0], [3], [1]], [1, 2]]),
    ("repeated", lambda x: x[[1, 1, 1], [2, 2, 0]]),
    ("negative", lambda x: x[[-1, 0], :, [-6, 5]]),
    ("with_slice_between", lambda x: x[[0, 1], :, [2, 3]]),
    ("int_not_adjacent", lambda x: x[1, :, [0, 5, 2]]),
    ("int_adjacent", lambda x: x[:, [0, 4], 1]),
    ("first_with_int_after", lambda x: x[[0, 1], :, 1]),
    ("none_between", lambda x: x[[0, 1], None, [2, 3]]),
    ("ellipsis", lambda x: x[..., [0, 5], None]),
    ("step_slice", lambda x: x[[-1, 0], 1:4:2, [2, -3]]),
    ("reversed_slice", lambda x: x[::-1, [3, 1]]),
    ("index_2d", lambda x: x[:, np.array([[0, 1], [4, 4], [2, 3]])]),
    ("mask_2d", lambda x: x[_MASK_2D]),
    ("mask_last", lambda x: x[..., _MASK_1D]),
    ("mask_and_list", lambda x: x[[1, 2, 0], :, _MASK_1D]),
    ("empty_list", lambda x: x[[]]),
    ("empty_array_and_int", lambda x: x[np.zeros(0, np.int64), 0]),
]


def _take_along(x, axis, index):
    """torch's gather in numpy: x cut to the index's shape off ``axis``, then take_along_axis."""
    cut = tuple(slice(None) if a == axis % x.ndim else slice(0, n)
                for a, n in enumerate(index.shape))
    return np.take_along_axis(x[cut], index, axis)


def _add_at(x, axis, index, src):
    """torch's scatter_add in numpy."""
    out = x.copy()
    axis %= x.ndim
    for pos in np.ndindex(index.shape):
        target = list(pos)
        target[axis] = index[pos]
        out[tuple(target)] += src[pos]
    return out


class TestGathering:
    """``x[tensors]``, ``gather``, ``scatter_add`` and ``index_select``."""

    @pytest.mark.parametrize("name, fn", ADVANCED, ids=[a[0] for a in ADVANCED])
    def test_advanced_index(self, backend, name, fn):
        check_op(backend, [(4, 5, 6)], fn)

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float64"])
    @pytest.mark.parametrize("name, fn", ADVANCED[::5], ids=[a[0] for a in ADVANCED[::5]])
    def test_advanced_index_dtypes(self, backend, name, fn, dtype):
        check_op(backend, [(4, 5, 6)], fn, dtype=dtype)

    @pytest.mark.parametrize("index_dtype", ["int32", "int64"])
    def test_index_tensors(self, backend, index_dtype):
        rows = np.array([[0, 3], [2, 2]], dtype=index_dtype)
        cols = np.array([4, 1], dtype=index_dtype)
        check_op(backend, [(4, 5)], _pair(
            lambda x: x[fusion.Tensor(rows, backend=backend), fusion.Tensor(cols, backend=backend)],
            lambda x: x[rows, cols]))
        mask = _MASK_2D
        check_op(backend, [(4, 5)], _pair(lambda x: x[fusion.Tensor(mask, backend=backend)],
                                          lambda x: x[mask]))

    def test_picking_a_label_per_row(self, backend):
        labels = np.array([2, 0, 1, 2, 1])
        check_op(backend, [(5, 3)], _pair(
            lambda x: x[fusion.arange(5, backend=backend), fusion.Tensor(labels, backend=backend)],
            lambda x: x[np.arange(5), labels]))

    @pytest.mark.parametrize("where", ["elsewhere", "picked"])
    def test_picks_select_rather_than_multiply(self, backend, where):
        values = np.array([[1.0, INF, 3.0, -INF], [NAN, 5.0, -0.5, 7.0]], np.float32)
        t = fusion.Tensor(values, backend=backend)
        cases = {  # picks that avoid the non-finite values, and picks of them
            "elsewhere": [(slice(None), [0, 2]), ([1, 0], [1, 0]), (1, [3, 1, 1])],
            "picked": [(slice(None), [1, 3, 1]), ([1, 0, 0], [0, 1, 3]), ([[1], [0]], [0, 3])],
        }[where]
        for index in cases:
            assert_close(t[index].numpy(), values[index], "float32", 0, 0)
        index = np.array([[1, 3], [0, 0]])
        got = t.gather(1, fusion.Tensor(index, backend=backend)).numpy()
        assert_close(got, np.take_along_axis(values, index, 1), "float32", 0, 0)

    def test_example_of_the_inf_elsewhere(self, backend):
        x = fusion.Tensor([[1.0, INF, 3.0]], backend=backend)
        assert x[:, fusion.Tensor([0, 2], backend=backend)].tolist() == [[1.0, 3.0]]

    def test_gradient_is_exact_beside_non_finite_values(self, backend):
        x = fusion.Tensor([1.0, INF, 3.0, NAN], requires_grad=True, backend=backend)
        (x[[0, 2, 2]] * 2.0).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 4.0, 0.0])
        x.grad = None
        x[[1, 3]].sum().backward()  # the picked inf and nan get their gradient too
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0, 1.0])

    def test_a_non_finite_gradient_is_scattered_exactly(self, backend):
        x = fusion.Tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
        x[[0, 2, 2, 0]].backward(fusion.Tensor([INF, 1.0, -INF, NAN], backend=backend))
        got = x.grad.numpy()
        assert np.isnan(got[0]) and got[1] == 0.0 and got[2] == -INF

    @pytest.mark.parametrize("axis", [0, 1, -1])
    def test_gather(self, backend, axis):
        rng = np.random.default_rng(1)
        size = (3, 5, 3)[axis]
        index = rng.integers(-size, size, (2, 3, 2) if axis == 0 else (3, 4, 2))
        check_op(backend, [(3, 5, 3)], _pair(
            lambda x: x.gather(axis, fusion.Tensor(index, backend=backend)),
            lambda x: _take_along(x, axis, np.where(index < 0, index + size, index))))

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
    def test_gather_dtypes(self, backend, dtype):
        index = np.array([[0, 0, 2], [1, 0, 1]])
        check_op(backend, [(2, 3)], _pair(
            lambda x: x.gather(1, fusion.Tensor(index, backend=backend)),
            lambda x: np.take_along_axis(x, index, 1)), dtype=dtype)

    @pytest.mark.parametrize("axis", [0, 1, -1])
    def test_scatter_add(self, backend, axis):
        rng = np.random.default_rng(2)
        size = (4, 3, 5)[axis]
        shape = {0: (6, 3, 2), 1: (2, 5, 5), -1: (3, 2, 7)}[axis]
        index = rng.integers(0, size, shape)
        src_shape = tuple(n + 1 for n in shape)  # src may be larger than the index
        check_op(backend, [(4, 3, 5), src_shape], _pair(
            lambda x, s: x.scatter_add(axis, fusion.Tensor(index, backend=backend), s),
            lambda x, s: _add_at(x, axis, index, s)))

    def test_scatter_add_of_non_finite_values(self, backend):
        src = np.array([INF, 1.0, -INF, NAN, 2.0, INF], np.float32)
        index = np.array([0, 1, 1, 2, 3, 3])
        x = fusion.zeros(5, backend=backend)
        got = x.scatter_add(0, fusion.Tensor(index, backend=backend),
                            fusion.Tensor(src, backend=backend)).numpy()
        assert_close(got, _add_at(np.zeros(5, np.float32), 0, index, src), "float32", 0, 0)

    @pytest.mark.parametrize("dtype", ["int32", "int64"])
    def test_scatter_add_integers(self, backend, dtype):
        index = np.array([[2, 0, 2], [1, 1, 1]])
        check_op(backend, [(2, 3), (2, 3)], _pair(
            lambda x, s: x.scatter_add(1, fusion.Tensor(index, backend=backend), s),
            lambda x, s: _add_at(x, 1, index, s)), dtype=dtype)

    def test_index_select(self, backend):
        index = np.array([3, 0, 3])
        check_op(backend, [(2, 4, 3)], _pair(
            lambda x: x.index_select(1, fusion.Tensor(index, backend=backend)),
            lambda x: np.take(x, index, 1)))

    def test_bad_indices(self, backend):
        x = fusion.zeros(3, 4, backend=backend)
        with pytest.raises(IndexError, match="index 4 is out of range for axis 1 of size 4"):
            x[:, [0, 4]]
        with pytest.raises(IndexError, match="index -4 is out of range for axis 0"):
            x[[-4], [0]]
        with pytest.raises(IndexError, match="integers or booleans, not float32"):
            x[fusion.Tensor([0.0], backend=backend)]
        with pytest.raises(ValueError, match="cannot broadcast"):
            x[[0, 1], [0, 1, 2]]
        with pytest.raises(ValueError, match="as many"):
            x.gather(0, fusion.Tensor([0], backend=backend))
        with pytest.raises(ValueError, match="larger than the tensor"):
            x.gather(0, fusion.zeros(1, 5, dtype="int64", backend=backend))
        with pytest.raises(IndexError, match="out of range"):
            x.scatter_add(1, fusion.Tensor([[7]], backend=backend),
                          fusion.ones(1, 1, backend=backend))


class TestShapeEdgeCases:
    """0-d tensors where an axis is named."""

    def test_squeeze_of_a_0d_tensor(self, backend):
        x = fusion.Tensor(3.0, backend=backend)
        for axis in (0, -1, None):
            assert x.squeeze(axis).shape == () and x.squeeze(axis).item() == 3.0
        with pytest.raises(IndexError, match="axis 1 is out of range"):
            x.squeeze(1)

    def test_cat_of_0d_tensors_is_a_clear_error(self, backend):
        with pytest.raises(ValueError, match="tensor 1 is 0-d; use fusion.stack"):
            fusion.cat([fusion.ones(1, backend=backend), fusion.Tensor(2.0, backend=backend)])

    def test_cat_keeps_every_value(self, backend):
        a = fusion.Tensor([-0.0, INF], backend=backend)
        b = fusion.Tensor([NAN, -INF], backend=backend)
        got = fusion.cat([a, b]).numpy()
        np.testing.assert_array_equal(got, [-0.0, INF, NAN, -INF])
        assert np.signbit(got[0])
