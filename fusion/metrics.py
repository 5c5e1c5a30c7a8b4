"""Classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

Every function takes true labels and predicted labels (Tensors, numpy arrays or lists of
ints). Predicted scores of shape ``(n, classes)`` are accepted too and turned into labels
with an argmax over the last axis. Results are Python floats, or numpy arrays per class.

>>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
0.75
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .core.tensor import Tensor

AVERAGES = ("binary", "macro", "micro", "weighted", None)


def _labels(values) -> np.ndarray:
    return values.numpy() if isinstance(values, Tensor) else np.asarray(values)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted labels as 1-D arrays of one length (scores become labels)."""
    truth, pred = _labels(y_true), _labels(y_pred)
    if truth.ndim == 2 and truth.shape[1] == 1:
        truth = truth[:, 0]
    if pred.ndim == truth.ndim + 1:
        pred = pred.argmax(axis=-1) if pred.shape[-1] > 1 else pred[..., 0]
    if truth.ndim != 1 or pred.ndim != 1:
        raise ValueError(f"expected 1-D labels (or (n, classes) scores), got shapes "
                         f"{truth.shape} and {pred.shape}")
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} true labels but {len(pred)} predictions")
    return truth, pred


def accuracy(y_true, y_pred) -> float:
    """The fraction of predictions equal to the true labels.

    >>> accuracy(np.array([2, 0, 1]), np.array([[0.1, 0.2, 0.7], [0.9, 0.0, 0.1],
    ...                                         [0.5, 0.3, 0.2]]))
    0.6666666666666666
    """
    truth, pred = _pair(y_true, y_pred)
    if len(truth) == 0:
        raise ValueError("accuracy of no samples is undefined")
    return float(np.mean(truth == pred))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None,
                     labels: Sequence | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class i predicted as class j (int64).

    The classes are ``labels`` if given, else ``0 .. num_classes - 1`` if given, else the
    sorted labels that occur in either argument.

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    truth, pred = _pair(y_true, y_pred)
    if labels is not None and num_classes is not None:
        raise ValueError("give confusion_matrix labels or num_classes, not both")
    if labels is None:
        if num_classes is not None:
            labels = np.arange(num_classes)
        else:
            labels = np.union1d(truth, pred)
    labels = np.asarray(labels)
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels must be distinct, got {labels.tolist()}")
    k = len(labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]

    def position(values: np.ndarray, name: str) -> np.ndarray:
        at = np.searchsorted(sorted_labels, values).clip(0, max(k - 1, 0))
        if k == 0 or not np.all(sorted_labels[at] == values):
            unknown = np.setdiff1d(values, labels)
            raise ValueError(f"{name} holds labels {unknown.tolist()[:5]} outside the classes "
                             f"{labels.tolist()}")
        return order[at]

    if len(truth) == 0:
        return np.zeros((k, k), dtype=np.int64)
    rows, cols = position(truth, "y_true"), position(pred, "y_pred")
    return np.bincount(rows * k + cols, minlength=k * k).reshape(k, k).astype(np.int64)


def _divide(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    out = np.full(numerator.shape, float(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _counts(y_true, y_pred, average, pos_label, labels):
    """Per-class true positives, predicted counts and actual counts (one class if binary)."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, not {average!r}")
    truth, pred = _pair(y_true, y_pred)
    if average == "binary":
        present = np.union1d(truth, pred)
        if len(present) > 2:
            raise ValueError(f"average='binary' needs two classes, found {present.tolist()}; "
                             "use average='macro' (or 'micro', 'weighted', None)")
        classes = np.asarray([pos_label])
    else:
        classes = np.union1d(truth, pred) if labels is None else np.asarray(labels)
    is_true = truth[:, None] == classes
    is_pred = pred[:, None] == classes
    tp = (is_true & is_pred).sum(axis=0)
    return tp, is_pred.sum(axis=0), is_true.sum(axis=0)


def _average(per_class: np.ndarray, average, actual: np.ndarray, micro: float):
    if average is None:
        return per_class
    if average == "micro":
        return float(micro)
    if average == "weighted":
        return float(np.average(per_class, weights=actual)) if actual.sum() else 0.0
    return float(per_class.mean()) if len(per_class) else 0.0


def precision(y_true, y_pred, average: str | None = "binary", pos_label=1,
              labels: Sequence | None = None, zero_division: float = 0.0):
    """The fraction of predictions of a class that are right: ``tp / (tp + fp)``.

    ``average``: ``"binary"`` (the score of ``pos_label``), ``"macro"`` (the unweighted mean
    over classes), ``"micro"`` (from the total counts), ``"weighted"`` (mean weighted by
    support) or None (one score per class). A class never predicted scores ``zero_division``.

    >>> precision([0, 1, 1, 1], [1, 1, 1, 0])
    0.6666666666666666
    """
    tp, predicted, actual = _counts(y_true, y_pred, average, pos_label, labels)
    micro = _divide(tp.sum(keepdims=True), predicted.sum(keepdims=True), zero_division)[0]
    per_class = _divide(tp, predicted, zero_division)
    if average == "binary":
        return float(per_class[0])
    return _average(per_class, average, actual, micro)


def recall(y_true, y_pred, average: str | None = "binary", pos_label=1,
           labels: Sequence | None = None, zero_division: float = 0.0):
    """The fraction of a class's samples that are found: ``tp / (tp + fn)``.

    ``average`` as for :func:`precision`.

    >>> recall([0, 1, 1, 1], [1, 1, 1, 0])
    0.6666666666666666
    """
    tp, predicted, actual = _counts(y_true, y_pred, average, pos_label, labels)
    micro = _divide(tp.sum(keepdims=True), actual.sum(keepdims=True), zero_division)[0]
    per_class = _divide(tp, actual, zero_division)
    if average == "binary":
        return float(per_class[0])
    return _average(per_class, average, actual, micro)


def f1(y_true, y_pred, average: str | None = "binary", pos_label=1,
       labels: Sequence | None = None, zero_division: float = 0.0):
    """The harmonic mean of precision and recall: ``2 tp / (2 tp + fp + fn)``.

    ``average`` as for :func:`precision`; ``"macro"`` averages the per-class F1 scores.

    >>> f1([0, 1, 1, 1], [1, 1, 1, 0])
    0.6666666666666666
    """
    tp, predicted, actual = _counts(y_true, y_pred, average, pos_label, labels)
    micro = _divide(2 * tp.sum(keepdims=True), (predicted + actual).sum(keepdims=True),
                    zero_division)[0]
    per_class = _divide(2 * tp, predicted + actual, zero_division)
    if average == "binary":
        return float(per_class[0])
    return _average(per_class, average, actual, micro)


f1_score = f1


def format_confusion_matrix(matrix: np.ndarray, labels: Sequence | None = None) -> str:
    """The matrix as an aligned text table, true classes down, predictions across.

    >>> print(format_confusion_matrix(np.array([[5, 1], [0, 4]])))
    true\\pred   0   1
            0   5   1
            1   0   4
    """
    matrix = np.asarray(matrix)
    labels = [str(v) for v in (labels if labels is not None else range(len(matrix)))]
    corner = "true\\pred"
    width = max(3, len(str(matrix.max())) if matrix.size else 1, *(len(s) for s in labels))
    head = corner + "".join(f" {s:>{width}}" for s in labels)
    rows = [f"{label:>{len(corner)}}" + "".join(f" {v:>{width}}" for v in row)
            for label, row in zip(labels, matrix, strict=True)]
    return "\n".join([head, *rows])


def _macro(fn: Callable) -> Callable:
    def metric(y_true, y_pred) -> float:
        return fn(y_true, y_pred, average="macro")
    metric.__name__ = fn.__name__
    return metric


#: The metrics :func:`fusion.train.fit` knows by name; precision, recall and F1 are macro
#: averages there (pass a callable for another average).
METRICS: dict[str, Callable] = {
    "accuracy": accuracy,
    "precision": _macro(precision),
    "recall": _macro(recall),
    "f1": _macro(f1),
}


def get_metric(name: str | Callable) -> Callable:
    """The metric function called ``name`` (a callable is returned as it is).

    >>> get_metric("accuracy") is accuracy
    True
    """
    if callable(name):
        return name
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}, or pass a "
                         "function (y_true, y_pred) -> float") from None
