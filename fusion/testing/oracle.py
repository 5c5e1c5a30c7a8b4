"""The oracle: one expression through numpy (the reference) and through Fusion, compared.

:func:`check_op` compares forward values and the result's dtype, then compares the gradients
Fusion's autograd gives with central finite differences of the *numpy* expression in float64.
The reference is never Fusion itself, so a bug in a composite op cannot hide behind itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

import fusion
from fusion.core.dtypes import float32, float64, to_dtype

from .fixtures import capabilities_of, dtype_capability, skip_unless_supported

#: Forward tolerances (rtol, atol) by dtype: composites (tanh from sigmoid, cos from sin) are
#: allowed a few ulps more than numpy's direct functions.
FORWARD_TOLERANCE = {"float32": (1e-4, 1e-5), "float64": (1e-7, 1e-9)}


def make_inputs(inputs: Sequence, dtype="float32", low: float = -2.0, high: float = 2.0,
                seed: int = 0) -> list[np.ndarray]:
    """Arrays for :func:`check_op`: a tuple of ints is a shape filled with random values of
    ``dtype`` in ``[low, high]``; a numpy array is kept as it is; anything else (a list, a
    number) becomes an array of ``dtype``.

    >>> [a.shape for a in make_inputs([(2, 3), [1.0, 2.0]])]
    [(2, 3), (2,)]
    """
    rng = np.random.default_rng(seed)
    npd = to_dtype(dtype).np
    arrays = []
    for spec in inputs:
        if isinstance(spec, np.ndarray):
            arrays.append(spec)
        elif isinstance(spec, tuple) and all(isinstance(n, int) for n in spec):
            if npd.kind == "f":
                values = rng.uniform(low, high, spec)
            elif npd.kind == "b":
                values = rng.random(spec) < 0.5
            else:
                values = rng.integers(math.floor(low), math.ceil(high) + 1, spec)
            arrays.append(np.asarray(values).astype(npd))
        else:
            arrays.append(np.asarray(spec, dtype=npd))
    return arrays


def numeric_gradient(ref: Callable, arrays: Sequence[np.ndarray], index: int,
                     weights: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences, in float64, of ``sum(ref(*arrays) * weights)`` with
    respect to ``arrays[index]``."""
    args = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    base = args[index]
    grad = np.zeros(base.shape)
    for i in np.ndindex(base.shape):
        total = []
        for delta in (eps, -eps):
            moved = base.copy()
            moved[i] += delta
            out = ref(*args[:index], moved, *args[index + 1:])
            total.append(float((np.asarray(out, dtype=np.float64) * weights).sum()))
        grad[i] = (total[0] - total[1]) / (2 * eps)
    return grad


def check_op(backend: str, inputs: Sequence, fn: Callable, ref: Callable | None = None, *,
             dtype="float32", grad: bool = True, expect_dtype=None,
             rtol: float | None = None, atol: float | None = None,
             grad_rtol: float = 1e-4, grad_atol: float = 1e-5,
             low: float = -2.0, high: float = 2.0, seed: int = 0) -> fusion.Tensor:
    """Check ``fn`` on Fusion's backend ``backend`` against ``ref`` (default: ``fn``) on numpy.

    ``inputs`` are given to :func:`make_inputs`. Forward: ``fn(*tensors)`` must equal
    ``ref(*arrays)`` in shape, dtype (``expect_dtype`` where Fusion's documented dtype differs
    from numpy's, e.g. ``int32 / int32`` is float32) and values. Backward, when ``grad`` and
    some input is a float: every float input becomes a float64 leaf (float32 on a backend
    without float64, with looser tolerances), the output is weighted by fixed random numbers
    and summed, and each leaf's ``.grad`` must match finite differences of ``ref``.
    Returns the forward result. Tests of dtypes the backend lacks are skipped.

    >>> check_op("numpy", [(2, 3)], lambda x: x.exp(), np.exp)  # doctest: +ELLIPSIS
    Tensor(...)
    """
    ref = fn if ref is None else ref
    arrays = make_inputs(inputs, dtype, low, high, seed)
    for a in arrays:
        if dtype_capability(a.dtype) is not None:
            skip_unless_supported(backend, a.dtype.name)

    # --- forward ---------------------------------------------------------------------------
    expected = np.asarray(ref(*[a.copy() for a in arrays]))
    tensors = [fusion.Tensor(a, backend=backend) for a in arrays]
    out = fn(*tensors)
    assert isinstance(out, fusion.Tensor), f"expected a Tensor, got {type(out).__name__}"
    assert out.backend == fusion.get_backend(backend).name, (
        f"result on backend {out.backend!r}, inputs on {backend!r}")
    assert out.shape == expected.shape, f"shape {out.shape}, numpy gives {expected.shape}"
    want = to_dtype(expect_dtype if expect_dtype is not None else expected.dtype)
    assert out.dtype is want, f"dtype {out.dtype.name}, expected {want.name}"
    got = out.numpy()
    assert isinstance(got, np.ndarray) and got.dtype == want.np and got.shape == out.shape
    assert_close(got, expected, want.name, rtol, atol)

    # --- backward --------------------------------------------------------------------------
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if not grad or not floats or not want.is_float:
        return out
    exact = "float64" in capabilities_of(backend)
    gdtype = float64 if exact else float32
    if not exact:  # float32 gradients against float64 differences
        grad_rtol, grad_atol = max(grad_rtol, 1e-2), max(grad_atol, 1e-3)
    leaves = [fusion.Tensor(a, dtype=gdtype, requires_grad=True, backend=backend)
              if i in floats else fusion.Tensor(a, backend=backend)
              for i, a in enumerate(arrays)]
    result = fn(*leaves)
    assert result.requires_grad, "the result is not differentiable (no graph was recorded)"
    weights = np.random.default_rng(seed + 1).uniform(0.5, 1.5, result.shape)
    result.backward(fusion.Tensor(weights, dtype=gdtype, backend=backend))
    # the finite differences see the values the leaves hold (rounded to float32 if need be)
    points = [leaf.numpy() if i in floats else a
              for i, (leaf, a) in enumerate(zip(leaves, arrays, strict=True))]
    for i in floats:
        leaf = leaves[i]
        analytic = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
        assert leaf.grad is None or leaf.grad.shape == leaf.shape, (
            f"gradient of input {i} has shape {leaf.grad.shape}, the input {leaf.shape}")
        numeric = numeric_gradient(ref, points, i, weights)
        np.testing.assert_allclose(
            analytic, numeric, rtol=grad_rtol, atol=grad_atol,
            err_msg=f"gradient of input {i}: autograd vs finite differences of numpy")
    return out


def assert_close(got: np.ndarray, expected: np.ndarray, dtype: str,
                 rtol: float | None = None, atol: float | None = None) -> None:
    """Equal values: exactly for bool and integers, within tolerance for floats (NaN == NaN,
    inf == inf)."""
    expected = np.asarray(expected)
    if dtype in FORWARD_TOLERANCE:
        default_rtol, default_atol = FORWARD_TOLERANCE[dtype]
        np.testing.assert_allclose(
            got, expected.astype(got.dtype) if expected.dtype.kind in "biuf" else expected,
            rtol=default_rtol if rtol is None else rtol,
            atol=default_atol if atol is None else atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)
