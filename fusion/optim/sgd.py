"""Gradient descent: GD for full batches, SGD with momentum, Nesterov and weight decay."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's formulas. For each parameter ``p`` with
    gradient ``g``, at step t::

        g = g + weight_decay * p                       (L2 penalty, if weight_decay)
        b = g  (t = 1),   b = momentum * b + (1 - dampening) * g  (t > 1)
        g = g + momentum * b  (nesterov),   g = b  (otherwise)   (if momentum)
        p = p - lr * g

    ``maximize`` ascends instead (g is negated first).

    >>> opt = fusion.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    def _check_group(self, group) -> None:
        super()._check_group(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"momentum must be >= 0, got {group['momentum']}")

    def _scalars(self, group, state) -> dict[str, float]:
        return {"lr": group["lr"], "momentum": group["momentum"],
                "1-dampening": 1 - group["dampening"], "weight_decay": group["weight_decay"]}

    def _branches(self, group, state) -> tuple:
        return ("momentum_buffer" in state, bool(group["momentum"]), bool(group["dampening"]),
                bool(group["weight_decay"]), group["nesterov"], group["maximize"])

    def _update(self, p: Tensor, grad: Tensor, state, group, scalars) -> Tensor:
        g = self._l2_gradient(p, grad, group, scalars)
        if group["momentum"]:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = g.detach()
            else:
                buf = buf * scalars["momentum"] + (g * scalars["1-dampening"]
                                                   if group["dampening"] else g)
            state["momentum_buffer"] = buf
            g = g + buf * scalars["momentum"] if group["nesterov"] else buf
        return p - g * scalars["lr"]


class GD(SGD):
    """Plain gradient descent, ``p = p - lr * g``: the same update as :class:`SGD` without
    momentum, for a different intent. GD is meant for the full batch, where ``g`` is the
    exact gradient of the whole objective (a convex fit such as logistic regression converges
    with a small enough constant ``lr``); SGD is meant for mini-batches, whose noisy gradients
    momentum smooths. Keeping both names lets a training script say which one it does.

    >>> opt = fusion.optim.GD(model.parameters(), lr=0.5)
    """

    def __init__(self, params: Iterable, lr: float = 0.01, weight_decay: float = 0.0):
        super().__init__(params, lr=lr, weight_decay=weight_decay)
