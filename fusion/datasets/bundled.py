"""Small data sets read from the copies scikit-learn ships (no network needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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


def _missing(what: str) -> ImportError:
    return ImportError(
        f"fusion.datasets.{what}() reads the copy of the data that scikit-learn ships, and "
        f"scikit-learn is not installed; install it with: {INSTALL_HINT}")


def _sklearn_datasets(what: str):
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise _missing(what) from exc
    return datasets


def _bundled_file(what: str, name: str) -> Path | None:
    """scikit-learn's copy of a data file, found without importing scikit-learn.

    Importing scikit-learn pulls in scipy and takes seconds; the files are small CSVs. If the
    file is not where scikit-learn keeps it, None: the caller goes through scikit-learn.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise _missing(what)
    for root in spec.submodule_search_locations or ():
        path = Path(root) / "datasets" / "data" / name
        if path.is_file():
            return path
    return None


def _read_csv(path: Path | None, skiprows: int, shape: tuple[int, int]) -> np.ndarray | None:
    """The table in ``path`` if it has the expected shape, else None."""
    if path is None:
        return None
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=skiprows, dtype=np.float64)
    except (OSError, ValueError):
        return None
    return table if table.shape == shape else None


def _split_table(table: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(table[:, :-1], dtype=dtype)
    y = table[:, -1].astype(np.int64)
    return X, y


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
    if not as_bunch:
        table = _read_csv(_bundled_file("digits", "digits.csv.gz"), 0, (1797, 65))
        if table is not None:
            return _split_table(table, dtype)
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
    if not as_bunch:
        # the file's first row is a header: "569,30,malignant,benign"
        table = _read_csv(_bundled_file("breast_cancer", "breast_cancer.csv"), 1, (569, 31))
        if table is not None:
            return _split_table(table, dtype)
    raw = _sklearn_datasets("breast_cancer").load_breast_cancer()
    return _result(raw, as_bunch, dtype)
