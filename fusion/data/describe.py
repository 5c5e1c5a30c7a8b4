"""Summary statistics of every numeric column of a data set, like pandas' ``describe``.

The statistics are computed with Fusion's own tensor reductions (sums, maxima, masks), in
float64, so that the table is also a small worked example of the library. Only the
percentiles need an order: the columns are sorted with numpy and the interpolation between
the two neighbouring order statistics is ours (pandas' and numpy's "linear" method).

Definitions (n is the number of values that are not NaN, and x̄ their mean):

- Std and Variance are the sample ones (divided by n - 1).
- Skewness is the adjusted Fisher-Pearson coefficient G1 = n sqrt(n - 1) / (n - 2) * M3 / M2^1.5,
  with Mk = sum((x - x̄)^k); NaN below 3 values (pandas' ``skew``).
- Kurtosis is the bias-corrected excess kurtosis
  G2 = n (n + 1) (n - 1) M4 / ((n - 2) (n - 3) M2^2) - 3 (n - 1)^2 / ((n - 2) (n - 3)),
  0 for a normal distribution; NaN below 4 values (pandas' ``kurt``).
- A constant column (Min == Max) has variance 0 exactly, and skewness and kurtosis NaN
  (0 / 0: the shape of a point is undefined), as pandas 3 gives them (pandas 2 gave 0).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..core.dtypes import float64
from ..core.tensor import Tensor, where

STATISTICS = (
    "Count", "Mean", "Std", "Min", "25%", "50%", "75%", "Max",
    "Missing", "Variance", "Range", "IQR", "Skewness", "Kurtosis",
)

# The spellings of a missing value in a CSV file (a subset of pandas' defaults).
_MISSING = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "?"})


class Description(Mapping):
    """The statistics of each column: ``d[column][statistic]``, printed as an aligned table.

    >>> d = describe(np.array([[1.0, 10.0], [2.0, 20.0], [4.0, float("nan")]]), names=["a", "b"])
    >>> d["a"]["Mean"], d["b"]["Missing"]
    (2.3333333333333335, 1.0)
    """

    def __init__(self, columns: Sequence[str], values: np.ndarray,
                 statistics: Sequence[str] = STATISTICS):
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(statistics), len(columns)):
            raise ValueError(f"values of shape {values.shape} for {len(statistics)} statistics "
                             f"and {len(columns)} columns")
        self.columns = list(columns)
        self.statistics = list(statistics)
        self.values = values  # (statistic, column), as pandas' describe lays it out

    # --- Mapping: column name -> {statistic: value} ------------------------------------
    def __getitem__(self, column: str | int) -> dict[str, float]:
        key = str(column)
        if key not in self.columns:
            raise KeyError(f"no column {column!r}; the columns are {self.columns}")
        j = self.columns.index(key)
        return {stat: float(v) for stat, v in zip(self.statistics, self.values[:, j], strict=True)}

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def row(self, statistic: str) -> dict[str, float]:
        """One statistic of every column: ``d.row("Mean") == {"a": 2.33, ...}``."""
        if statistic not in self.statistics:
            raise KeyError(f"no statistic {statistic!r}; the statistics are {self.statistics}")
        i = self.statistics.index(statistic)
        return {c: float(v) for c, v in zip(self.columns, self.values[i], strict=True)}

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{column: {statistic: value}}``, the orientation of pandas' ``describe().to_dict()``."""
        return {column: self[column] for column in self.columns}

    # --- printing -------------------------------------------------------------------------
    def to_string(self, width: int | None = None, precision: int = 6) -> str:
        """The aligned table; with ``width``, columns wrap into blocks at most that wide."""
        label_width = max(len(s) for s in self.statistics)
        cells = [_format_column(self.values[:, j], precision) for j in range(len(self.columns))]
        widths = [max(len(name), *(len(c) for c in col))
                  for name, col in zip(self.columns, cells, strict=True)]
        blocks: list[list[int]] = [[]]
        used = label_width
        for j, w in enumerate(widths):
            if width is not None and blocks[-1] and used + 2 + w > width:
                blocks.append([])
                used = label_width
            blocks[-1].append(j)
            used += 2 + w
        text = []
        for block in blocks:
            lines = [" " * label_width + "".join(f"  {self.columns[j]:>{widths[j]}}"
                                                 for j in block)]
            for i, stat in enumerate(self.statistics):
                lines.append(f"{stat:<{label_width}}"
                             + "".join(f"  {cells[j][i]:>{widths[j]}}" for j in block))
            text.append("\n".join(lines))
        return "\n\n".join(text)

    def __str__(self) -> str:
        return self.to_string(width=shutil.get_terminal_size().columns)

    def __repr__(self) -> str:
        return self.to_string()

    def _repr_html_(self) -> str:
        cells = [_format_column(self.values[:, j], 6) for j in range(len(self.columns))]
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join(
            f"<tr><th>{stat}</th>"
            + "".join(f"<td>{cells[j][i]}</td>" for j in range(len(self.columns))) + "</tr>"
            for i, stat in enumerate(self.statistics))
        return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _format_column(values: np.ndarray, precision: int) -> list[str]:
    """One column's values in one notation: scientific when fixed would hide some of them."""
    finite = np.abs(values[np.isfinite(values)])
    # Above a million, fixed notation grows too wide; below 10^-precision it shows 0.000000.
    scientific = bool((finite > 1e6).any() or ((finite > 0) & (finite < 10.0 ** -precision)).any())
    out = []
    for value in values:
        if math.isnan(value):
            out.append("NaN")
        elif math.isinf(value):
            out.append("inf" if value > 0 else "-inf")
        else:
            out.append(f"{value:.{precision}e}" if scientific else f"{value:.{precision}f}")
    return out


# --- reading the input -------------------------------------------------------------------
def _parse(field: str) -> float | None:
    """The number in a CSV field, NaN when it marks a missing value, None when it is text."""
    text = field.strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def read_csv(path: str | os.PathLike, header: bool | None = None,
             delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    """The column names and the rows of fields of a CSV file (blank lines skipped).

    ``header=None`` guesses: the first row is a header when none of its fields is a number.
    Without one, a column is named by its position (``"0"``, ``"1"``, ...), as pandas does.
    Every row must have as many fields as the first.

    >>> names, rows = read_csv("data.csv")  # doctest: +SKIP
    """
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f, delimiter=delimiter) if row]
    if not rows:
        return [], []
    if header is None:
        header = all(_parse(field) is None for field in rows[0])
    names = [name.strip() for name in rows[0]] if header else [str(i) for i in range(len(rows[0]))]
    body = rows[1:] if header else rows
    for line, row in enumerate(body, start=2 if header else 1):
        if len(row) != len(names):
            raise ValueError(f"{path}: line {line} has {len(row)} fields, expected {len(names)}")
    return names, body


def read_numeric_csv(path: str | os.PathLike, header: bool | None = None,
                     delimiter: str = ",") -> tuple[list[str], np.ndarray]:
    """The numeric columns of a CSV file as (names, float64 array of shape (rows, columns)).

    The header is found as :func:`read_csv` does. A column with a field that is neither a
    number nor a missing marker (empty, NA, NaN, null, ...) is skipped.

    >>> names, array = read_numeric_csv("data.csv")  # doctest: +SKIP
    """
    names, body = read_csv(path, header, delimiter)
    parsed = [[_parse(field) for field in row] for row in body]
    keep = [j for j in range(len(names)) if all(row[j] is not None for row in parsed)]
    array = np.array([[row[j] for j in keep] for row in parsed], dtype=np.float64)
    return [names[j] for j in keep], array.reshape(len(parsed), len(keep))


def _table(data, names: Sequence[str] | None, header: bool | None) -> tuple[list[str], np.ndarray]:
    """Any supported input as (column names, 2-D float64 array)."""
    if isinstance(data, str | os.PathLike):
        return read_numeric_csv(data, header=header)
    if isinstance(data, Mapping):
        columns = {str(k): np.asarray(v) for k, v in data.items()}
        columns = {k: v for k, v in columns.items() if v.dtype.kind in "biuf"}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        array = np.stack(list(columns.values()), axis=1) if columns else np.empty((0, 0))
        return list(columns), array.astype(np.float64)
    array = data.numpy() if isinstance(data, Tensor) else np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"describe needs numbers, not an array of dtype {array.dtype}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"describe needs a 1-D or 2-D array, not shape {array.shape}")
    if names is None:
        names = [str(i) for i in range(array.shape[1])]
    elif len(names) != array.shape[1]:
        raise ValueError(f"{len(names)} names for {array.shape[1]} columns")
    return [str(n) for n in names], array.astype(np.float64)


def _select(names: list[str], array: np.ndarray, columns) -> tuple[list[str], np.ndarray]:
    # Columns without a header are named by their position in the file ("0", "2", ... when
    # column 1 is text): there an int is that name, never a position among the numeric ones.
    by_position = not all(name.isdigit() for name in names)
    chosen = []
    for column in columns:
        if str(column) in names:
            chosen.append(names.index(str(column)))
        elif isinstance(column, int) and not isinstance(column, bool) and by_position:
            if not -len(names) <= column < len(names):
                raise IndexError(f"column {column} is out of range for {len(names)} columns")
            chosen.append(column % len(names))
        else:
            raise KeyError(f"no numeric column {column!r}; the numeric columns are {names}")
    return [names[j] for j in chosen], array[:, chosen]


# --- the statistics ----------------------------------------------------------------------
def _percentiles(array: np.ndarray, count: np.ndarray, qs: Sequence[float]) -> list[Tensor]:
    """Linear-interpolated percentiles of each column, ignoring NaN (sorted last by numpy)."""
    ordered = np.sort(array, axis=0)
    columns = np.arange(array.shape[1])
    top = np.maximum(count - 1, 0)
    out = []
    for q in qs:
        # The q-quantile sits at fractional rank h = (n - 1) q between two order statistics.
        rank = top * q
        below = np.floor(rank).astype(np.int64)
        above = np.minimum(below + 1, top)
        fraction = Tensor(rank - below, dtype=float64)
        if len(ordered):
            low = Tensor(ordered[below, columns], dtype=float64)
            high = Tensor(ordered[above, columns], dtype=float64)
        else:
            low = high = Tensor(np.full(array.shape[1], np.nan), dtype=float64)
        value = low + (high - low) * fraction
        out.append(where(Tensor(count == 0), math.nan, value))
    return out


def _statistics(array: np.ndarray) -> np.ndarray:
    """The (statistic, column) table of STATISTICS for a 2-D float64 array with NaNs."""
    x = Tensor(array, dtype=float64)
    missing = x.isnan()
    present = missing.logical_not()
    n = present.sum(axis=0).cast(float64)
    empty = n == 0
    zeroed = where(missing, 0.0, x)
    mean = zeroed.sum(axis=0) / n
    deviation = where(missing, 0.0, x - mean)
    squares = deviation.square()
    m2 = squares.sum(axis=0)
    m3 = (squares * deviation).sum(axis=0)
    m4 = squares.square().sum(axis=0)
    lowest = where(empty, math.nan, where(missing, math.inf, x).min(axis=0))
    highest = where(empty, math.nan, where(missing, -math.inf, x).max(axis=0))
    # The mean of a constant column is rounded, so its deviations are noise, not spread.
    flat = lowest == highest
    m2 = where(flat, 0.0, m2)
    variance = where(n > 1, m2 / (n - 1), math.nan)

    skew = n * (n - 1).sqrt() / (n - 2) * m3 / m2.pow(1.5)
    skew = where((n < 3).logical_or(flat), math.nan, skew)
    kurt = (n * (n + 1) * (n - 1) * m4 / ((n - 2) * (n - 3) * m2.square())
            - 3 * (n - 1).square() / ((n - 2) * (n - 3)))
    kurt = where((n < 4).logical_or(flat), math.nan, kurt)

    q1, median, q3 = _percentiles(array, n.numpy().astype(np.int64), (0.25, 0.5, 0.75))
    rows = {
        "Count": n, "Mean": mean, "Std": variance.sqrt(), "Min": lowest,
        "25%": q1, "50%": median, "75%": q3, "Max": highest,
        "Missing": missing.sum(axis=0).cast(float64), "Variance": variance,
        "Range": highest - lowest, "IQR": q3 - q1, "Skewness": skew, "Kurtosis": kurt,
    }
    return np.stack([rows[stat].numpy() for stat in STATISTICS])


def describe(data, columns: Sequence[str | int] | None = None, *,
             names: Sequence[str] | None = None, header: bool | None = None) -> Description:
    """Count, Mean, Std, Min, quartiles, Max, Missing, Variance, Range, IQR, Skewness, Kurtosis.

    ``data`` is a Tensor or numpy array (1-D: one column; 2-D: rows by columns), a mapping of
    column names to 1-D arrays, or the path of a CSV file (``header=None`` guesses whether its
    first row names the columns; text columns are skipped). ``columns`` picks columns by name,
    or, where the columns have names of their own, by position among the numeric ones; without
    a header a column's name is its position in the file (``"0"``, ``"2"``, ...), so ``2`` is
    the file's column 2. ``names`` labels the columns of an array. NaN marks a missing value:
    it is counted in Missing and left out of every other statistic.

    >>> d = describe(fusion.Tensor([[1.0, 2.0], [3.0, 5.0], [5.0, 11.0]]), names=["x", "y"])
    >>> d["x"]["Std"], d.row("50%")
    (2.0, {'x': 3.0, 'y': 5.0})
    >>> print(d.to_string())  # doctest: +NORMALIZE_WHITESPACE
                      x           y
    Count      3.000000    3.000000
    ...
    """
    column_names, array = _table(data, names, header)
    if columns is not None:
        column_names, array = _select(column_names, array, columns)
    if len(array) == 0:  # no rows: nothing to reduce, every statistic but the counts is NaN
        values = np.full((len(STATISTICS), array.shape[1]), np.nan)
        values[[STATISTICS.index("Count"), STATISTICS.index("Missing")]] = 0.0
    else:
        with np.errstate(all="ignore"):  # empty and constant columns divide by zero on purpose
            values = _statistics(array)
    return Description(column_names, values)
