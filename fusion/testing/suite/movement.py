"""Movement methods, indexing, cat and stack against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import fusion

from ..oracle import check_op


def _pair(fusion_fn, numpy_fn):
    """One lambda for both sides, dispatching on the argument's type."""
    return lambda *xs: fusion_fn(*xs) if isinstance(xs[0], fusion.Tensor) else numpy_fn(*xs)


MOVEMENT = [
    ("reshape", _pair(lambda x: x.reshape(6, 4), lambda x: x.reshape(6, 4))),
    ("reshape_tuple", _pair(lambda x: x.reshape((4, 3, 2)), lambda x: x.reshape(4, 3, 2))),
    ("reshape_infer", _pair(lambda x: x.reshape(-1, 2), lambda x: x.reshape(-1, 2))),
    ("view", _pair(lambda x: x.view(24), lambda x: x.reshape(24))),
    ("flatten", _pair(lambda x: x.flatten(), lambda x: x.reshape(-1))),
    ("flatten_1", _pair(lambda x: x.flatten(1), lambda x: x.reshape(2, -1))),
    ("flatten_0_1", _pair(lambda x: x.flatten(0, 1), lambda x: x.reshape(6, 4))),
    ("unsqueeze_0", _pair(lambda x: x.unsqueeze(0), lambda x: np.expand_dims(x, 0))),
    ("unsqueeze_-1", _pair(lambda x: x.unsqueeze(-1), lambda x: np.expand_dims(x, -1))),
    ("unsqueeze_2", _pair(lambda x: x.unsqueeze(2), lambda x: np.expand_dims(x, 2))),
    ("permute", _pair(lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1))),
    ("permute_tuple", _pair(lambda x: x.permute((1, 2, 0)), lambda x: x.transpose(1, 2, 0))),
    ("permute_negative", _pair(lambda x: x.permute(-1, -3, -2), lambda x: x.transpose(2, 0, 1))),
    ("transpose", _pair(lambda x: x.transpose(), lambda x: np.swapaxes(x, -2, -1))),
    ("transpose_0_2", _pair(lambda x: x.transpose(0, 2), lambda x: np.swapaxes(x, 0, 2))),
    ("T", _pair(lambda x: x.T, lambda x: x.T)),
    ("expand", _pair(lambda x: x.reshape(2, 3, 4, 1).expand(2, 3, 4, 5),
                     lambda x: np.broadcast_to(x.reshape(2, 3, 4, 1), (2, 3, 4, 5)))),
    ("expand_new_axes", _pair(lambda x: x.expand(3, 2, 3, 4),
                              lambda x: np.broadcast_to(x, (3, 2, 3, 4)))),
    ("expand_minus_one", _pair(lambda x: x[:, :1].expand(-1, 3, -1),
                               lambda x: np.broadcast_to(x[:, :1], (2, 3, 4)))),
    ("broadcast_to", _pair(lambda x: x.broadcast_to((5, 2, 3, 4)),
                           lambda x: np.broadcast_to(x, (5, 2, 3, 4)))),
    ("pad", _pair(lambda x: x.pad(((1, 0), (0, 2), (1, 1))),
                  lambda x: np.pad(x, ((1, 0), (0, 2), (1, 1))))),
    ("pad_value", _pair(lambda x: x.pad((None, (2, 0), (0, 1)), value=-1.5),
                        lambda x: np.pad(x, ((0, 0), (2, 0), (0, 1)), constant_values=-1.5))),
    ("shrink", _pair(lambda x: x.shrink(((0, 1), (1, 3), (0, 4))), lambda x: x[0:1, 1:3, 0:4])),
    ("shrink_none", _pair(lambda x: x.shrink((None, (2, 3), None)), lambda x: x[:, 2:3, :])),
    ("flip_all", _pair(lambda x: x.flip(), lambda x: np.flip(x))),
    ("flip_0", _pair(lambda x: x.flip(0), lambda x: np.flip(x, 0))),
    ("flip_tuple", _pair(lambda x: x.flip((1, -1)), lambda x: np.flip(x, (1, 2)))),
    ("repeat", _pair(lambda x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)))),
    ("repeat_new_axis", _pair(lambda x: x.repeat(2, 1, 1, 2), lambda x: np.tile(x, (2, 1, 1, 2)))),
    ("repeat_tuple", _pair(lambda x: x.repeat((1, 2, 1)), lambda x: np.tile(x, (1, 2, 1)))),
]

SQUEEZE = [
    ("squeeze", _pair(lambda x: x.squeeze(), np.squeeze)),
    ("squeeze_1", _pair(lambda x: x.squeeze(1), lambda x: np.squeeze(x, 1))),
    ("squeeze_-1", _pair(lambda x: x.squeeze(-1), lambda x: np.squeeze(x, -1))),
    ("squeeze_tuple", _pair(lambda x: x.squeeze((1, 3)), lambda x: np.squeeze(x, (1, 3)))),
]

# numpy's basic indexing on a (4, 5, 6) array
INDICES = [
    ("int", lambda x: x[1]), ("negative_int", lambda x: x[-1]), ("two_ints", lambda x: x[1, -2]),
    ("three_ints", lambda x: x[3, 0, 5]),
    ("slice", lambda x: x[1:3]), ("open_slice", lambda x: x[:, 2:]),
    ("negative_bounds", lambda x: x[-3:-1, :-2]), ("step", lambda x: x[::2]),
    ("step_3", lambda x: x[:, 1::3, ::4]), ("negative_step", lambda x: x[::-1]),
    ("negative_step_2", lambda x: x[:, ::-2]), ("reverse_range", lambda x: x[3:0:-2, 4:1:-1]),
    ("empty_slice", lambda x: x[2:2]), ("past_the_end", lambda x: x[1:100, -100:2]),
    ("none", lambda x: x[None]), ("none_middle", lambda x: x[:, None, 1:]),
    ("ellipsis", lambda x: x[..., 1]), ("ellipsis_middle", lambda x: x[1, ..., ::-2]),
    ("ellipsis_none", lambda x: x[..., None]), ("everything", lambda x: x[-1, None, ..., 1:4:2]),
    ("gather_list", lambda x: x[[0, 2, 2, 1]]),
    ("gather_negative", lambda x: x[[-1, 0]]),
    ("gather_array", lambda x: x[:, np.array([4, 0, 1])]),
    ("gather_2d", lambda x: x[..., np.array([[0, 5], [1, 1]])]),
    ("gather_after_int", lambda x: x[1, np.array([3, 2])]),
    ("gather_before_int", lambda x: x[:, np.array([3, 2]), -1]),
]


class TestMovement:
    """reshape, flatten, squeeze, unsqueeze, permute, transpose, expand, pad, shrink, flip,
    repeat, cat and stack."""

    @pytest.mark.parametrize("name, fn", MOVEMENT, ids=[m[0] for m in MOVEMENT])
    def test_movement(self, backend, name, fn):
        check_op(backend, [(2, 3, 4)], fn)

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float64"])
    @pytest.mark.parametrize("name, fn", MOVEMENT[::3], ids=[m[0] for m in MOVEMENT[::3]])
    def test_movement_dtypes(self, backend, name, fn, dtype):
        check_op(backend, [(2, 3, 4)], fn, dtype=dtype)

    @pytest.mark.parametrize("name, fn", SQUEEZE, ids=[m[0] for m in SQUEEZE])
    def test_squeeze(self, backend, name, fn):
        check_op(backend, [(2, 1, 3, 1)], fn)

    @pytest.mark.parametrize("axis", [0, 1, -1, -2])
    @pytest.mark.parametrize("count", [1, 2, 3])
    def test_cat(self, backend, axis, count):
        shapes = [(2, 3), (2, 4), (2, 1)] if axis in (1, -1) else [(2, 3), (4, 3), (1, 3)]
        check_op(backend, shapes[:count],
                 _pair(lambda *t: fusion.cat(t, axis=axis), lambda *a: np.concatenate(a, axis)))

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
    def test_cat_dtypes(self, backend, dtype):
        check_op(backend, [(2, 3), (1, 3)], _pair(lambda *t: fusion.cat(t),
                                                  lambda *a: np.concatenate(a)), dtype=dtype)

    def test_cat_promotes(self, backend):
        x, y = np.arange(3, dtype=np.int32), np.array([0.5, 1.5], np.float32)
        check_op(backend, [x, y], _pair(lambda *t: fusion.cat(t), lambda *a: np.concatenate(a)),
                 expect_dtype="float32")

    @pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
    def test_stack(self, backend, axis):
        check_op(backend, [(2, 3), (2, 3), (2, 3)],
                 _pair(lambda *t: fusion.stack(t, axis=axis), lambda *a: np.stack(a, axis)))

    @pytest.mark.parametrize("dtype", ["bool", "int64"])
    def test_stack_dtypes(self, backend, dtype):
        check_op(backend, [(3,), (3,)], _pair(lambda *t: fusion.stack(t),
                                              lambda *a: np.stack(a)), dtype=dtype)


class TestIndexing:
    """``__getitem__``: ints, slices (steps, negative too), None, Ellipsis, integer tensors."""

    @pytest.mark.parametrize("name, fn", INDICES, ids=[i[0] for i in INDICES])
    def test_getitem(self, backend, name, fn):
        check_op(backend, [(4, 5, 6)], fn)

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float64"])
    @pytest.mark.parametrize("name, fn", INDICES[::4], ids=[i[0] for i in INDICES[::4]])
    def test_getitem_dtypes(self, backend, name, fn, dtype):
        check_op(backend, [(4, 5, 6)], fn, dtype=dtype)

    @pytest.mark.parametrize("index_dtype", ["int32", "int64"])
    def test_tensor_index(self, backend, index_dtype):
        # picking each row's label logit, as a loss does
        index = np.array([2, 0, 1, 2], dtype=index_dtype)
        check_op(backend, [(4, 3)], _pair(lambda x: x.T[fusion.Tensor(index, backend=backend)],
                                          lambda x: x.T[index]))
        check_op(backend, [(4, 3)],
                 _pair(lambda x: x[:, fusion.Tensor(index[:2], backend=backend)],
                       lambda x: x[:, index[:2]]))

    def test_index_of_a_scalar_tensor(self, backend):
        check_op(backend, [(5,)], _pair(lambda x: x[fusion.Tensor(3, backend=backend)],
                                        lambda x: x[3]))

    def test_integer_index_has_gradient_per_occurrence(self, backend):
        x = fusion.Tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
        x[[0, 2, 2, 2]].sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 3.0])
