"""Which features are worth a picture: those that separate the classes, never ids or constants.

The plots of a run and the dashboard both start from :func:`informative_features`, so the
first pictures a user sees show the data's structure instead of pixels that are always blank.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_ID_NAMES = {"id", "index", "idx", "row", "key", "uid", "identifier"}


def is_id_column(values: np.ndarray, name: str | None = None) -> bool:
    """Whether a column identifies rows rather than measuring them: named like an id, or
    integers that are all different (a counter, a record number).

    >>> is_id_column(np.arange(100.0)), is_id_column(np.arange(100.0) % 17)
    (True, False)
    """
    if name is not None and name.strip().lower() in _ID_NAMES:
        return True
    finite = values[np.isfinite(values)]
    if finite.size < 20 or not np.all(finite == np.round(finite)):
        return False
    return np.unique(finite).size == finite.size


def separation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How well each column separates the classes: the one-way ANOVA F statistic (variance of
    the class means over the variance within classes), on the raw values, NaNs left out.
    A column constant within every class but not across them scores inf; a constant one 0."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(y).reshape(-1)
    present = np.isfinite(x)
    values = np.where(present, x, 0.0)
    n = present.sum(axis=0)
    mean = values.sum(axis=0) / np.maximum(n, 1)
    between = np.zeros(x.shape[1])
    within = np.zeros(x.shape[1])
    classes = np.unique(labels)
    for label in classes:
        rows = labels == label
        count = present[rows].sum(axis=0)
        class_mean = values[rows].sum(axis=0) / np.maximum(count, 1)
        between += count * (class_mean - mean) ** 2
        within += (np.where(present[rows], values[rows] - class_mean, 0.0) ** 2).sum(axis=0)
    between /= max(len(classes) - 1, 1)
    within /= np.maximum(n - len(classes), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = between / within
    return np.where(within > 0, score, np.where(between > 0, np.inf, 0.0))


def informative_features(x, y=None, count: int = 4,
                         names: Sequence[str] | None = None) -> list[int]:
    """Up to ``count`` column indices worth plotting, best first.

    Constant columns and id columns (:func:`is_id_column`) are skipped. With class labels
    ``y`` the rest are ranked by :func:`separation` on the raw values (standardising would
    blow up near-constant columns); without labels they keep their order.

    >>> x = np.column_stack([np.arange(40.0), np.ones(40), np.r_[np.zeros(20), np.ones(20)]])
    >>> informative_features(x, np.r_[np.zeros(20), np.ones(20)])
    [2]
    """
    data = np.asarray(x, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    candidates = []
    for j in range(data.shape[1]):
        column = data[:, j]
        finite = column[np.isfinite(column)]
        if finite.size == 0 or finite.min() == finite.max():
            continue
        if is_id_column(column, None if names is None else str(names[j])):
            continue
        candidates.append(j)
    if y is not None and candidates:
        score = separation(data[:, candidates], y)
        # stable: equal scores keep the columns' order
        candidates = [candidates[i] for i in np.argsort(-score, kind="stable")]
    return candidates[:count]
