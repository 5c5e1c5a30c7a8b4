"""Losses as modules over :mod:`fusion.nn.functional`: ``loss_fn(prediction, target)``.

``reduction`` is "mean" (the default), "sum" or "none" (one value per sample).
"""

from __future__ import annotations

from ..core.tensor import Tensor
from . import functional as F
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, not {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"

    def get_config(self) -> dict:
        return {"reduction": self.reduction}


class CrossEntropyLoss(_Loss):
    """Cross-entropy of raw scores (N, C) against integer labels (N,) or class
    probabilities (N, C), through log_softmax (stable); optional label smoothing.

    >>> loss = CrossEntropyLoss()(fusion.zeros(2, 4), fusion.Tensor([0, 3]))
    >>> round(loss.item(), 4)  # log 4
    1.3863
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, target) -> Tensor:
        return F.cross_entropy(logits, target, self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "label_smoothing": self.label_smoothing}


class NLLLoss(_Loss):
    """Negative log-likelihood of integer labels under log-probabilities (N, C).

    >>> NLLLoss()(fusion.Tensor([[-0.5, -2.0]]), fusion.Tensor([0])).item()
    0.5
    """

    def forward(self, log_probs: Tensor, target) -> Tensor:
        return F.nll_loss(log_probs, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities in [0, 1] (clamped away from 0 and 1).

    >>> round(BCELoss()(fusion.Tensor([0.5]), fusion.Tensor([1.0])).item(), 4)
    0.6931
    """

    def forward(self, probs: Tensor, target) -> Tensor:
        return F.binary_cross_entropy(probs, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of raw scores: sigmoid and log in one stable formula.

    >>> round(BCEWithLogitsLoss()(fusion.Tensor([0.0]), fusion.Tensor([1.0])).item(), 4)
    0.6931
    """

    def forward(self, logits: Tensor, target) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)


class MSELoss(_Loss):
    """Mean squared error.

    >>> MSELoss()(fusion.Tensor([1.0, 3.0]), fusion.Tensor([0.0, 1.0])).item()
    2.5
    """

    def forward(self, prediction: Tensor, target) -> Tensor:
        return F.mse_loss(prediction, target, self.reduction)
