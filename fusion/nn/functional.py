"""Losses and activations as functions of Tensors, stable for training.

Every function here is a composition of Tensor methods, so it runs and differentiates on any
backend.
"""

from __future__ import annotations

import math

from ..core.dtypes import default_int
from ..core.tensor import Tensor, arange


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """(N...,) integer labels to (N..., num_classes) float32 rows of 0 and 1."""
    if labels.dtype.is_float:
        raise TypeError(f"one_hot needs integer labels, not {labels.dtype.name}")
    return _label_mask(labels, num_classes).float()


def _label_mask(labels: Tensor, num_classes: int) -> Tensor:
    """(N...,) integer labels to (N..., num_classes) bool rows, True at each label."""
    classes = arange(num_classes, backend=labels.data.backend)
    return labels.cast(default_int).unsqueeze(-1) == classes


def _weighted_log_probs(weights: Tensor, log_probs: Tensor) -> Tensor:
    """``weights * log_probs`` summed over the last axis, a zero weight contributing 0 even
    against a log-probability of -inf (the limit of p log q as p goes to 0; the product
    would be nan)."""
    return (weights == 0).where(0.0, weights * log_probs).sum(-1)


def _check_labels(logits: Tensor, target: Tensor) -> None:
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"labels of shape {target.shape} do not fit scores of shape "
                         f"{logits.shape} (expected {logits.shape[:-1]})")
    values = target.numpy()
    classes = logits.shape[-1]
    if values.size and (values.min() < 0 or values.max() >= classes):
        raise ValueError(f"labels must lie in [0, {classes}), got values from {values.min()} "
                         f"to {values.max()}")


def nll_loss(log_probs: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer labels under rows of log-probabilities (..., C)."""
    target = log_probs._operand(target)
    _check_labels(log_probs, target)
    # select, not multiply by a one-hot row: 0 * -inf at another class would be nan
    picked = _label_mask(target, log_probs.shape[-1]).where(log_probs, 0.0).sum(-1)
    return _reduce(-picked, reduction)


def cross_entropy(logits: Tensor, target, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of raw scores (..., C) against integer labels (...) or probabilities
    (..., C), computed through log_softmax so that no score overflows."""
    target = logits._operand(target)
    log_probs = logits.log_softmax(-1)
    classes = logits.shape[-1]
    if target.dtype.is_float:
        if target.shape != logits.shape:
            raise ValueError(f"probability targets of shape {target.shape} do not fit scores "
                             f"of shape {logits.shape}")
        probs = target.cast(log_probs.dtype)
    else:
        _check_labels(logits, target)
        probs = one_hot(target, classes).cast(log_probs.dtype)
    if label_smoothing:
        probs = probs * (1 - label_smoothing) + label_smoothing / classes
    return _reduce(-_weighted_log_probs(probs, log_probs), reduction)


def binary_cross_entropy(probs: Tensor, target, reduction: str = "mean",
                         eps: float = 1e-7) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) with p clamped to [eps, 1 - eps], so log(0) never
    appears."""
    target = probs._operand(target).cast(probs.dtype)
    if target.shape != probs.shape:
        raise ValueError(f"targets of shape {target.shape} do not fit {probs.shape}")
    p = probs.clip(eps, 1 - eps)
    return _reduce(-(target * p.log() + (1 - target) * (1 - p).log()), reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of raw scores: log(1 + e^x) - x y, with softplus's stable form."""
    target = logits._operand(target).cast(logits.dtype)
    if target.shape != logits.shape:
        raise ValueError(f"targets of shape {target.shape} do not fit {logits.shape}")
    loss = logits.softplus() - logits * target
    return _reduce(loss, reduction)


def mse_loss(prediction: Tensor, target, reduction: str = "mean") -> Tensor:
    target = prediction._operand(target)
    if target.shape != prediction.shape:
        raise ValueError(f"targets of shape {target.shape} do not fit {prediction.shape}")
    return _reduce((prediction - target).square(), reduction)


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return x.leaky_relu(negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def gelu(x: Tensor) -> Tensor:
    return x.gelu()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis)


# Abramowitz and Stegun 7.1.26: |error| <= 1.5e-7 over the real line, float32's resolution.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: Tensor) -> Tensor:
    """The error function, to within 1.5e-7 (a rational approximation built from exp, so
    every backend runs and differentiates it).

    >>> round(erf(fusion.Tensor([0.5])).item(), 4)
    0.5205
    """
    x = x._float()
    # the sign as -1 or +1 (never 0), so that the gradient at 0 is the slope of erf there
    sign = (x < 0).cast(x.dtype) * -2.0 + 1.0
    t = (x * sign * _ERF_P + 1.0).reciprocal()
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return sign * (1.0 - poly * (-(x * x)).exp())


def gelu_exact(x: Tensor) -> Tensor:
    """GELU as defined, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), rather than the tanh
    approximation of :func:`gelu`.

    >>> round(gelu_exact(fusion.Tensor([1.0])).item(), 4)
    0.8413
    """
    x = x._float()
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
