"""Small data sets read from the copies scikit-learn ships (no network needed)."""

from __future__ import annotations

import numpy as np

INSTALL_HINT = "pip install 'fusion[data]'"


class Bunch(dict):
    """A dict whose keys are also attributes: ``data``, ``target``, ``feature_names``,
    ``target_names``, ``description`` (and ``images`` for digits).

    >>> b = Bunch(data=np.zeros((2, 1)), target=np.array([0, 1]))
    >>> b.target.tolist()
    [0, 1]
    """

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"this Bunch has no field {name!r}; it has {sorted(self)}") \
                from None

    def __dir__(self):
        return [*super().__dir__(), *self.keys()]


def _sklearn_datasets(what: str):
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ImportError(
            f"fusion.datasets.{what}() reads the copy of the data that scikit-learn ships, and "
            f"scikit-learn is not installed; install it with: {INSTALL_HINT}") from exc
    return datasets


def _result(raw, as_bunch: bool, dtype, **extra):
    X = np.ascontiguousarray(raw.data, dtype=dtype)
    y = np.ascontiguousarray(raw.target, dtype=np.int64)
    if not as_bunch:
        return X, y
    return Bunch(data=X, target=y, feature_names=[str(n) for n in raw.feature_names],
                 target_names=[str(n) for n in raw.target_names], description=raw.DESCR,
                 **extra)


def digits(as_bunch: bool = False, dtype=np.float32):
    """The UCI handwritten digits: 1797 images of 8 x 8 pixels (values 0 to 16), labels 0-9.

    Returns ``(X, y)``: X of shape (1797, 64) in ``dtype`` (float32, Fusion's default float),
    y of int64 labels; with ``as_bunch=True``, a :class:`Bunch` that also holds the feature
    and class names, the description and the (1797, 8, 8) images. Needs scikit-learn
    (``pip install 'fusion[data]'``), which ships the data.

    >>> X, y = digits()
    >>> X.shape, y.shape, int(X.max())
    ((1797, 64), (1797,), 16)
    """
    raw = _sklearn_datasets("digits").load_digits()
    extra = {"images": np.ascontiguousarray(raw.images, dtype=dtype)} if as_bunch else {}
    return _result(raw, as_bunch, dtype, **extra)


def breast_cancer(as_bunch: bool = False, dtype=np.float32):
    """The Wisconsin Diagnostic Breast Cancer data: 569 samples, 30 real features.

    Labels follow scikit-learn's copy: 0 is malignant (212 samples), 1 is benign (357).
    Returns ``(X, y)``, or a :class:`Bunch` with ``as_bunch=True`` (as :func:`digits`).
    Needs scikit-learn (``pip install 'fusion[data]'``).

    >>> X, y = breast_cancer()
    >>> X.shape, int(y.sum())
    ((569, 30), 357)
    """
    raw = _sklearn_datasets("breast_cancer").load_breast_cancer()
    return _result(raw, as_bunch, dtype)
