"""Whole kernels, for backends that declare the capability ``"fuse"``.

The scheduler cuts each expression below into kernels; the backend's ``fuse`` must give what
:func:`fusion.core.kernel.evaluate` (numpy, one instruction at a time) gives for the same
launch, and the realised expression must match the same expression written in numpy. The
expressions cover every kind of view a kernel reads through (broadcast, permuted, shrunk,
flipped, padded, reshaped), reductions over inner, outer and all axes, row reductions read
back inside their consumer's kernel (for a backend that sets ``row_reductions``), every
elementwise op, int and bool dtypes, NaN and inf.
"""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.core.kernel import evaluate
from fusion.core.schedule import schedule

from ..fixtures import requires
from ..oracle import assert_close

# name, inputs (shape, dtype), Fusion expression, numpy expression
EXPRESSIONS = [
    ("chain", [((4, 5), "float32")],
     lambda x: ((x * 2 + 1).exp() * x), lambda x: np.exp(x * 2 + 1) * x),
    ("chain_sum", [((4, 5), "float32")],
     lambda x: ((x * 2 + 1).exp() * x).sum(), lambda x: (np.exp(x * 2 + 1) * x).sum()),
    ("bias_row", [((6, 3), "float32"), ((3,), "float32")],
     lambda x, b: (x + b).relu(), lambda x, b: np.maximum(x + b, 0)),
    ("transposed", [((3, 4), "float32"), ((4, 3), "float32")],
     lambda x, y: x.T * y - 1, lambda x, y: x.T * y - 1),
    ("row_softmax", [((5, 7), "float32")],
     lambda x: x.softmax(-1),
     lambda x: np.exp(x - x.max(-1, keepdims=True))
     / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)),
    ("softmax_of_transposed", [((7, 5), "float32")],
     lambda x: (x.T * 2).softmax(-1),
     lambda x: np.exp(2 * x.T - (2 * x.T).max(-1, keepdims=True))
     / np.exp(2 * x.T - (2 * x.T).max(-1, keepdims=True)).sum(-1, keepdims=True)),
    ("shifted_row_sum", [((3, 4, 6), "float64")],
     lambda x: (x - x.max(-1, keepdim=True)).exp().sum(-1),
     lambda x: np.exp(x - x.max(-1, keepdims=True)).sum(-1)),
    ("column_max", [((5, 7), "float64")],
     lambda x: (x.sin() * 3).max(0), lambda x: (np.sin(x) * 3).max(0)),
    ("flip_shrink", [((6, 5), "float32")],
     lambda x: x[4:0:-1, 1:4].sqrt(), lambda x: np.sqrt(x[4:0:-1, 1:4])),
    ("pad", [((3, 4), "float32")],
     lambda x: x.pad(((1, 2), (0, 1)), value=-1.5) * 2,
     lambda x: np.pad(x, ((1, 2), (0, 1)), constant_values=-1.5) * 2),
    ("reshape_permute", [((2, 3, 4), "float32")],
     lambda x: x.permute(2, 0, 1).reshape(4, 6).exp().sum(1),
     lambda x: np.exp(x.transpose(2, 0, 1).reshape(4, 6)).sum(1)),
    ("where_compare", [((4, 4), "float32"), ((4, 4), "float32")],
     lambda x, y: (x < y).where(x.log(), y.reciprocal()),
     lambda x, y: np.where(x < y, np.log(x), np.reciprocal(y))),
    ("ints", [((3, 5), "int32"), ((5,), "int32")],
     lambda x, y: (x * y + 7) // 2 - x.maximum(y),
     lambda x, y: (x * y + 7) // 2 - np.maximum(x, y)),
    ("int_sum_cast", [((4, 6), "int64")],
     lambda x: (x == 2).cast("int64").sum(1) + x.sum(1),
     lambda x: (x == 2).astype(np.int64).sum(1) + x.sum(1)),
    ("nan_inf", [((8,), "float32")],
     lambda x: (x * np.inf).maximum(x.log()) + (x - x) / x,
     lambda x: np.maximum(x * np.inf, np.log(x)) + (x - x) / x),
]


def _values(shape, dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.startswith("float"):
        values = rng.uniform(-2.0, 2.0, shape).astype(dtype)
        if values.size >= 8:  # a few special values where the shape allows
            values.reshape(-1)[:4] = [0.0, -0.0, np.nan, 1.0]
        return values
    return rng.integers(-3, 4, shape).astype(dtype)


@requires("fuse")
class TestFusedKernels:
    """A backend's ``fuse`` against the reference, kernel by kernel and end to end."""

    @pytest.mark.parametrize("name, inputs, fn, ref", EXPRESSIONS,
                             ids=[e[0] for e in EXPRESSIONS])
    def test_expression(self, backend, name, inputs, fn, ref):
        arrays = [_values(shape, dtype, seed) for seed, (shape, dtype) in enumerate(inputs)]
        tensors = [fusion.Tensor(a, backend=backend) for a in arrays]
        got = fn(*tensors).numpy()
        with np.errstate(all="ignore"):
            expected = np.asarray(ref(*arrays))
        assert got.shape == expected.shape
        dtype = fn(*tensors).dtype.name
        assert_close(got, expected.astype(dtype), dtype, 1e-5 if dtype == "float32" else 1e-12)

    @pytest.mark.parametrize("name, inputs, fn, ref", EXPRESSIONS,
                             ids=[e[0] for e in EXPRESSIONS])
    def test_each_kernel_matches_the_reference(self, backend, name, inputs, fn, ref):
        arrays = [_values(shape, dtype, seed) for seed, (shape, dtype) in enumerate(inputs)]
        tensors = [fusion.Tensor(a, backend=backend) for a in arrays]
        out = fn(*tensors).data
        impl = fusion.get_backend(backend)
        fusable = getattr(impl, "fusable", lambda kernel, shape: True)
        rows = getattr(impl, "row_reductions", False)
        for item in schedule([out], recompute=True, rows=rows):
            if not item.fusable or not fusable(item.kernel, item.shape):
                for node in item.nodes:
                    node.realize()
                continue
            data = [b.data for b in item.inputs]
            host = [np.asarray(impl.to_numpy(d)) for d in data]
            got = np.asarray(impl.to_numpy(impl.fuse(item.kernel, data, item.views,
                                                     item.constants, item.shape)))
            with np.errstate(all="ignore"):
                expected = evaluate(item.kernel, host, item.views, item.constants, item.shape)
            dtype = item.kernel.output.dtype.name
            assert got.dtype == np.dtype(dtype), f"{item.kernel.name} gave {got.dtype}"
            assert_close(got, expected, dtype, 1e-5 if dtype == "float32" else 1e-12)
            item.output._data = impl.from_numpy(expected)
            item.output.srcs = ()
