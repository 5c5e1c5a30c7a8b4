"""Adam (Kingma and Ba, 2015) and AdamW (Loshchilov and Hutter, 2019)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..core.tensor import Tensor
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam, with PyTorch's formulas. For each parameter ``p`` with gradient ``g``, at step t::

        g = g + weight_decay * p                 (L2 penalty, coupled to the gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v)                    (amsgrad: then v_max is used for v)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    >>> opt = fusion.optim.Adam(model.parameters(), lr=1e-3)
    """

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize})

    def _check_group(self, group) -> None:
        super()._check_group(group)
        beta1, beta2 = group["betas"]
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {group['betas']}")
        if not group["eps"] >= 0:
            raise ValueError(f"eps must be >= 0, got {group['eps']}")

    def _scalars(self, group, state) -> dict[str, float]:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        t = state["step"] = state.get("step", 0) + 1
        return {"decay": 1 - lr * wd, "weight_decay": wd, "beta1": beta1, "beta2": beta2,
                "1-beta1": 1 - beta1, "1-beta2": 1 - beta2, "step_size": lr / (1 - beta1 ** t),
                "bias2": 1 / math.sqrt(1 - beta2 ** t), "eps": eps}

    def _branches(self, group, state) -> tuple:
        return ("exp_avg" in state, "max_exp_avg_sq" in state, bool(group["weight_decay"]),
                group["amsgrad"], group["maximize"])

    def _update(self, p: Tensor, grad: Tensor, state, group, scalars) -> Tensor:
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] and self._decoupled:
            p = p * scalars["decay"]
        elif group["weight_decay"]:
            g = g + p * scalars["weight_decay"]
        if "exp_avg" not in state:  # m and v start at zero: their first values need no
            m = g * scalars["1-beta1"]  # multiply by zero
            v = g * g * scalars["1-beta2"]
        else:
            m = state["exp_avg"] * scalars["beta1"] + g * scalars["1-beta1"]
            v = state["exp_avg_sq"] * scalars["beta2"] + g * g * scalars["1-beta2"]
        state["exp_avg"], state["exp_avg_sq"] = m, v
        if group["amsgrad"]:
            v_max = state.get("max_exp_avg_sq")
            v = v if v_max is None else v_max.maximum(v)
            state["max_exp_avg_sq"] = v
        denom = v.sqrt() * scalars["bias2"] + scalars["eps"]
        return p - m * scalars["step_size"] / denom


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameter shrinks by ``lr * weight_decay``
    before the Adam step, instead of the penalty's gradient passing through m and v::

        p = p * (1 - lr * weight_decay)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    >>> opt = fusion.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    """

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
