"""Check a function's gradients against central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .dtypes import float64


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree."""


def gradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """Compare the gradients autograd gives ``fn(*inputs)`` with finite differences.

    Float inputs are copied as float64 leaves that require grad; the output is reduced to a
    scalar by a fixed random weighting, so every output element counts. Returns True, or
    raises :class:`GradcheckError` naming the input and the element where they differ.

    >>> fusion.gradcheck(lambda x: (x * x).sum(), [fusion.randn(3)])
    True
    """
    from .tensor import Tensor

    leaves = [
        Tensor(np.array(t.numpy() if isinstance(t, Tensor) else t, dtype=np.float64),
               dtype=float64, requires_grad=True,
               backend=t.data.backend if isinstance(t, Tensor) else None)
        for t in inputs
    ]
    out = fn(*leaves)
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, out.shape)

    def scalar(*args) -> float:
        result = fn(*args).numpy().astype(np.float64)
        return float((result * weights).sum())

    if out.requires_grad:  # else autograd says every gradient is 0; differences may disagree
        (out * Tensor(weights, dtype=float64, backend=out.data.backend)).sum().backward()
    for k, leaf in enumerate(leaves):
        analytic = (np.zeros(leaf.shape) if leaf.grad is None
                    else leaf.grad.numpy().astype(np.float64))
        base = leaf.numpy().astype(np.float64)
        numeric = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            values = []
            for delta in (eps, -eps):
                moved = base.copy()
                moved[i] += delta
                args = [Tensor(moved, dtype=float64, backend=leaf.data.backend)
                        if j == k else other.detach() for j, other in enumerate(leaves)]
                values.append(scalar(*args))
            numeric[i] = (values[0] - values[1]) / (2 * eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            where = tuple(int(v) for v in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradient of input {k} differs at {where}: autograd {analytic[where]:.6g}, "
                f"finite differences {numeric[where]:.6g}")
    return True
