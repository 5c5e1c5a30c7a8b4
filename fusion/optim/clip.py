"""Gradient clipping."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

from ..core import capture
from ..core.dtypes import float64
from ..core.grad_mode import no_grad
from ..core.tensor import Tensor, full


def _with_grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The norm is that of every gradient element taken as one vector (``norm_type`` p, or
    ``math.inf`` for the largest magnitude), computed in the gradients' dtype on their
    backend. Each gradient is multiplied by ``min(1, max_norm / (norm + 1e-6))`` (a new
    tensor: no memory is written; a factor of 1 leaves every value as it was). Returns the
    norm before clipping, as a 0-d tensor. Nothing is read on the host (unless
    ``error_if_nonfinite``), so a step that clips can be captured by :func:`fusion.jit`.

    >>> loss.backward()
    >>> norm = fusion.optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    params = _with_grads(parameters)
    if not params:
        return full((), 0.0)
    norm_type = float(norm_type)
    if norm_type <= 0:
        raise ValueError(f"norm_type must be > 0, got {norm_type}")
    first = params[0].grad
    mixed = any(p.grad.dtype is not first.dtype for p in params)
    with no_grad():
        parts = []  # each gradient's part of the norm, in one dtype, on the first's backend
        for p in params:
            g = p.grad
            if not g.numel():
                continue
            part = g.abs().max() if math.isinf(norm_type) else \
                (g * g).sum() if norm_type == 2.0 else (g.abs() ** norm_type).sum()
            if mixed:
                part = part.cast(float64)
            parts.append(part.to(first.backend))
        if not parts:
            total = full((), 0.0, dtype=first.dtype, backend=first.backend)
        elif math.isinf(norm_type):
            total = functools.reduce(lambda a, b: a.maximum(b), parts)
        else:
            total = functools.reduce(lambda a, b: a + b, parts)
            total = total.sqrt() if norm_type == 2.0 else total ** (1.0 / norm_type)
        if error_if_nonfinite:
            capture.host_check(total.data, _finite)
        coefficient = (max_norm / (total + 1e-6)).clip(max=1.0)
        for p in params:
            factor = coefficient.cast(p.grad.dtype).to(p.grad.backend)
            p.grad = (p.grad * factor).detach()
    return total.detach()


def _finite(values) -> None:
    total = float(values)
    if not math.isfinite(total):
        raise RuntimeError(f"the total gradient norm is {total}: some gradient holds "
                           "nan or inf")


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]``.

    >>> fusion.optim.clip_grad_value_(model.parameters(), 0.5)
    """
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for p in _with_grads(parameters):
            p.grad = p.grad.clip(-clip_value, clip_value).detach()
