"""Gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable

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
    ``math.inf`` for the largest magnitude). If it exceeds ``max_norm``, each gradient is
    multiplied by ``max_norm / (norm + 1e-6)`` (a new tensor: no memory is written). Returns
    the norm before clipping, as a 0-d tensor.

    >>> loss.backward()
    >>> norm = fusion.optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    params = _with_grads(parameters)
    if not params:
        return full((), 0.0)
    norm_type = float(norm_type)
    if norm_type <= 0:
        raise ValueError(f"norm_type must be > 0, got {norm_type}")
    with no_grad():
        # each gradient's part reduced on its backend, the parts summed on the host in float64
        if math.isinf(norm_type):
            total = max(float(p.grad.abs().max().item()) if p.grad.numel() else 0.0
                        for p in params)
        elif norm_type == 2.0:
            total = math.sqrt(sum(float((p.grad * p.grad).sum().item()) for p in params))
        else:
            total = sum(float((p.grad.abs() ** norm_type).sum().item())
                        for p in params) ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(total):
            raise RuntimeError(f"the total gradient norm is {total}: some gradient holds "
                               "nan or inf")
        coefficient = max_norm / (total + 1e-6)
        if coefficient < 1.0:
            for p in params:
                p.grad = (p.grad * coefficient).detach()
    first = params[0].grad
    return full((), total, dtype=first.dtype, backend=first.backend)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]``.

    >>> fusion.optim.clip_grad_value_(model.parameters(), 0.5)
    """
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for p in _with_grads(parameters):
            p.grad = p.grad.clip(-clip_value, clip_value).detach()
