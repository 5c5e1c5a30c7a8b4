"""Sampling categories from weights: ``Tensor.multinomial``, seeded by fusion.manual_seed."""

from __future__ import annotations

import math

from .dtypes import int64
from .tensor import Tensor, arange, rand, stack


def multinomial(weights: Tensor, num_samples: int, replacement: bool = False) -> Tensor:
    """``num_samples`` category indices per row of non-negative ``weights`` (C,) or (N, C),
    drawn with probability proportional to the weights (int64, torch's ``multinomial``).

    With replacement, each draw is the first category whose cumulative weight exceeds a
    uniform draw scaled to the row's total; without, the categories with the largest
    ``log(w) + Gumbel noise`` (the Gumbel top-k trick), which draws without replacement.

    >>> fusion.manual_seed(0)
    >>> multinomial(fusion.Tensor([0.0, 1.0, 0.0]), 2, replacement=True).tolist()
    [1, 1]
    """
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial needs weights of shape (C,) or (N, C), got {weights.shape}")
    rows = weights.reshape(1, -1) if weights.ndim == 1 else weights
    rows = rows._float()
    count, classes = rows.shape
    values = rows.numpy()
    if (values < 0).any() or not (values == values).all() or (values == math.inf).any():
        raise ValueError("multinomial weights must be finite and non-negative")
    positive = (values > 0).sum(axis=1)
    if (positive == 0).any():
        raise ValueError("multinomial: a row of weights sums to 0")
    num_samples = int(num_samples)
    if num_samples < 1:
        raise ValueError(f"multinomial needs at least 1 sample, got {num_samples}")
    if not replacement and num_samples > positive.min():
        raise ValueError(f"multinomial without replacement: {num_samples} samples from a row "
                         f"with only {positive.min()} categories of non-zero weight")
    backend = rows.data.backend
    positions = arange(classes, backend=backend).reshape(1, classes)
    if replacement:
        cumulative = rows.detach().cumsum(1)  # (N, C)
        draws = rand(count, num_samples, dtype=rows.dtype, backend=backend) * cumulative[:, -1:]
        below = cumulative.unsqueeze(1) <= draws.unsqueeze(-1)  # (N, S, C)
        out = below.sum(-1).minimum(classes - 1)
    else:
        noise = -(-rand(count, classes, dtype=rows.dtype, backend=backend).clip(
            1e-30, None).log()).log()
        keys = rows.detach().log() + noise
        picks = []
        for _ in range(num_samples):
            best = keys.argmax(1)  # (N,)
            picks.append(best)
            chosen = best.unsqueeze(-1) == positions
            keys = chosen.where(-math.inf, keys)
        out = stack(picks, 1)
    out = out.cast(int64)
    return out.reshape(num_samples) if weights.ndim == 1 else out

