"""Splitting arrays into a training and a test part."""

from __future__ import annotations

import math

import numpy as np

from ..core import random as _rng
from ..core.tensor import Tensor


def _as_indexable(array):
    """Tensors and numpy arrays are indexed as they are; anything else becomes an array."""
    return array if isinstance(array, Tensor | np.ndarray) else np.asarray(array)


def _take(array, index: np.ndarray):
    if isinstance(array, Tensor):
        return Tensor(array.numpy()[index], backend=array.backend)
    return array[index]


def _test_count(test_size: float | int, n: int) -> int:
    if isinstance(test_size, bool):
        raise TypeError("test_size must be a fraction or a count, not a bool")
    if isinstance(test_size, int | np.integer):
        if not 0 < test_size < n:
            raise ValueError(f"test_size={test_size} must lie between 1 and {n - 1} for "
                             f"{n} samples")
        return int(test_size)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"a fractional test_size must lie in (0, 1), not {test_size}")
    count = math.ceil(test_size * n)
    if not 0 < count < n:
        raise ValueError(f"test_size={test_size} of {n} samples leaves an empty part")
    return count


def _stratified_test_positions(labels: np.ndarray, n_test: int,
                               rng: np.random.Generator) -> np.ndarray:
    """Pick ``n_test`` positions so that each class keeps its share of the whole.

    Each class gets the floor of its exact share; the positions left over go to the classes
    with the largest remainders (ties broken at random), so the total is exactly ``n_test``.
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        lonely = classes[counts.argmin()]
        raise ValueError(f"stratify: class {lonely!r} has a single sample; every class needs "
                         "at least 2 to appear on both sides")
    exact = counts * n_test / len(labels)
    share = np.floor(exact).astype(np.int64)
    remainder = exact - share
    order = np.lexsort((rng.random(len(classes)), -remainder))
    share[order[:n_test - share.sum()]] += 1
    picked = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        picked.append(rng.permutation(members)[:share[k]])
    return np.concatenate(picked)


def train_test_split(*arrays, test_size: float | int = 0.2, seed: int | None = None,
                     stratify=None, shuffle: bool = True) -> list:
    """Split arrays of one length into a training and a test part, rows kept together.

    Returns ``[a_train, a_test, b_train, b_test, ...]``; each part has its input's type
    (Tensor, on the same backend, or numpy array). ``test_size`` is a fraction (rounded up) or
    a count. ``seed`` makes the split reproducible (without it, Fusion's generator draws, so
    :func:`fusion.manual_seed` does). ``stratify`` is an array of labels: each label keeps its
    proportion in both parts. ``shuffle=False`` takes the last rows as the test part.

    >>> X, y = np.arange(20).reshape(10, 2), np.array([0] * 5 + [1] * 5)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, seed=0,
    ...                                                     stratify=y)
    >>> X_train.shape, sorted(y_test.tolist())
    ((6, 2), [0, 0, 1, 1])
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    arrays = tuple(_as_indexable(a) for a in arrays)
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) > 1:
        raise ValueError(f"train_test_split needs arrays of one length, got lengths {lengths}")
    n = lengths[0]
    n_test = _test_count(test_size, n)
    rng = np.random.default_rng(seed) if seed is not None else _rng.generator()
    if stratify is not None:
        if not shuffle:
            raise ValueError("stratify needs shuffle=True")
        labels = stratify.numpy() if isinstance(stratify, Tensor) else np.asarray(stratify)
        if len(labels) != n:
            raise ValueError(f"stratify has {len(labels)} labels for {n} samples")
        test = _stratified_test_positions(labels, n_test, rng)
        is_test = np.zeros(n, dtype=bool)
        is_test[test] = True
        # mix the classes: otherwise each part would come sorted by class
        test = rng.permutation(test)
        train = rng.permutation(np.flatnonzero(~is_test))
    elif shuffle:
        order = rng.permutation(n)
        train, test = order[:n - n_test], order[n - n_test:]
    else:
        train, test = np.arange(n - n_test), np.arange(n - n_test, n)
    out = []
    for array in arrays:
        out += [_take(array, train), _take(array, test)]
    return out
