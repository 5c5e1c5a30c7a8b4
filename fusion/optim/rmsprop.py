"""RMSprop (Hinton's lecture 6e; centred variant of Graves, 2013)."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.tensor import Tensor
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop, with PyTorch's formulas. For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                       (if weight_decay)
        s = alpha * s + (1 - alpha) * g^2              (s starts at 0)
        a = alpha * a + (1 - alpha) * g                (centered: a starts at 0)
        d = sqrt(s - a^2) + eps  (centered),   d = sqrt(s) + eps  (otherwise)
        b = momentum * b + g / d;  p = p - lr * b     (if momentum, b starts at 0)
        p = p - lr * g / d                             (otherwise)

    >>> opt = fusion.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, maximize: bool = False):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered, "maximize": maximize})

    def _check_group(self, group) -> None:
        super()._check_group(group)
        if not 0 <= group["alpha"] <= 1:
            raise ValueError(f"alpha must lie in [0, 1], got {group['alpha']}")
        if not group["momentum"] >= 0:
            raise ValueError(f"momentum must be >= 0, got {group['momentum']}")
        if not group["eps"] >= 0:
            raise ValueError(f"eps must be >= 0, got {group['eps']}")

    def _scalars(self, group, state) -> dict[str, float]:
        state["step"] = state.get("step", 0) + 1
        alpha = group["alpha"]
        return {"alpha": alpha, "1-alpha": 1 - alpha, "eps": group["eps"], "lr": group["lr"],
                "momentum": group["momentum"], "weight_decay": group["weight_decay"]}

    def _branches(self, group, state) -> tuple:
        return (tuple(sorted(k for k in state if k != "step")), group["centered"],
                group["momentum"] > 0, bool(group["weight_decay"]), group["maximize"])

    def _update(self, p: Tensor, grad: Tensor, state, group, scalars) -> Tensor:
        g = self._l2_gradient(p, grad, group, scalars)
        alpha = scalars["alpha"]
        square_avg = g * g * scalars["1-alpha"]
        if "square_avg" in state:
            square_avg = state["square_avg"] * alpha + square_avg
        state["square_avg"] = square_avg
        if group["centered"]:
            grad_avg = g * scalars["1-alpha"]
            if "grad_avg" in state:
                grad_avg = state["grad_avg"] * alpha + grad_avg
            state["grad_avg"] = grad_avg
            denom = (square_avg - grad_avg * grad_avg).sqrt() + scalars["eps"]
        else:
            denom = square_avg.sqrt() + scalars["eps"]
        if group["momentum"] > 0:
            buf = g / denom
            if "momentum_buffer" in state:
                buf = state["momentum_buffer"] * scalars["momentum"] + buf
            state["momentum_buffer"] = buf
            return p - buf * scalars["lr"]
        return p - g / denom * scalars["lr"]
