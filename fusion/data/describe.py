"""Summary statistics of every numeric column of a data set, like pandas' ``describe``.

A CSV file is read by :mod:`fusion.data.csvfile` (pandas' parser where installed, else a
chunked reader). The statistics take one pass over the rows, a chunk at a time: each chunk's
count, mean, central moment sums, minimum and maximum are Fusion's own tensor reductions in
float64, and the chunks are joined by the pairwise update of the moments (Chan et al., Pebay),
so memory stays a chunk's worth above the data. Only the percentiles need an order: a partial
sort per column (numpy's partition) finds the two neighbouring order statistics, and the
interpolation between them is ours (pandas' and numpy's "linear" method).

Definitions (n is the number of values that are not NaN, and x̄ their mean):

- Std and Variance are the sample ones (divided by n - 1).
- Skewness is the adjusted Fisher-Pearson coefficient G1 = n sqrt(n - 1) / (n - 2) * M3 / M2^1.5,
  with Mk = sum((x - x̄)^k); NaN below 3 values (pandas' ``skew``).
- Kurtosis is the bias-corrected excess kurtosis
  G2 = n (n + 1) (n - 1) M4 / ((n - 2) (n - 3) M2^2) - 3 (n - 1)^2 / ((n - 2) (n - 3)),
  0 for a normal distribution; NaN below 4 values (pandas' ``kurt``).
- Count and Missing are integers.
- A constant column (Min == Max) has variance 0 exactly, and skewness and kurtosis NaN
  (0 / 0: the shape of a point is undefined), as pandas 3 gives them (pandas 2 gave 0).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..core.dtypes import float64
from ..core.tensor import Tensor, persist, where
from .csvfile import Progress, read_numeric_csv

STATISTICS = (
    "Count", "Mean", "Std", "Min", "25%", "50%", "75%", "Max",
    "Missing", "Variance", "Range", "IQR", "Skewness", "Kurtosis",
)

#: The statistics that count values: integers, printed without decimals.
COUNTS = ("Count", "Missing")
CHUNK_ROWS = 1 << 16


class Description(Mapping):
    """The statistics of each column: ``d[column][statistic]``, printed as an aligned table.

    >>> d = describe(np.array([[1.0, 10.0], [2.0, 20.0], [4.0, float("nan")]]), names=["a", "b"])
    >>> d["a"]["Mean"], d["b"]["Missing"]
    (2.3333333333333335, 1)
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
        return {stat: _value(stat, v)
                for stat, v in zip(self.statistics, self.values[:, j], strict=True)}

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def row(self, statistic: str) -> dict[str, float]:
        """One statistic of every column: ``d.row("Mean") == {"a": 2.33, ...}``."""
        if statistic not in self.statistics:
            raise KeyError(f"no statistic {statistic!r}; the statistics are {self.statistics}")
        i = self.statistics.index(statistic)
        return {c: _value(statistic, v)
                for c, v in zip(self.columns, self.values[i], strict=True)}

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{column: {statistic: value}}``, the orientation of pandas' ``describe().to_dict()``."""
        return {column: self[column] for column in self.columns}

    # --- printing -------------------------------------------------------------------------
    def to_string(self, width: int | None = None, precision: int = 6) -> str:
        """The aligned table; with ``width``, columns wrap into blocks at most that wide."""
        label_width = max(len(s) for s in self.statistics)
        cells = [_format_column(self.values[:, j], self.statistics, precision)
                 for j in range(len(self.columns))]
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
        cells = [_format_column(self.values[:, j], self.statistics, 6)
                 for j in range(len(self.columns))]
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join(
            f"<tr><th>{stat}</th>"
            + "".join(f"<td>{cells[j][i]}</td>" for j in range(len(self.columns))) + "</tr>"
            for i, stat in enumerate(self.statistics))
        return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _value(statistic: str, value: float) -> float | int:
    return int(value) if statistic in COUNTS and math.isfinite(value) else float(value)


def _format_column(values: np.ndarray, statistics: Sequence[str], precision: int) -> list[str]:
    """One column's values in one notation (scientific when fixed would hide some of them);
    counts as integers."""
    measured = np.array([v for v, stat in zip(values, statistics, strict=True)
                         if stat not in COUNTS])
    finite = np.abs(measured[np.isfinite(measured)])
    # Above a million, fixed notation grows too wide; below 10^-precision it shows 0.000000.
    scientific = bool((finite > 1e6).any() or ((finite > 0) & (finite < 10.0 ** -precision)).any())
    out = []
    for value, stat in zip(values, statistics, strict=True):
        if stat in COUNTS and math.isfinite(value):
            out.append(str(int(value)))
        elif math.isnan(value):
            out.append("NaN")
        elif math.isinf(value):
            out.append("inf" if value > 0 else "-inf")
        else:
            out.append(f"{value:.{precision}e}" if scientific else f"{value:.{precision}f}")
    return out


# --- reading the input -------------------------------------------------------------------
def _table(data, names: Sequence[str] | None, header: bool | None,
           progress: Progress | None = None) -> tuple[list[str], np.ndarray]:
    """Any supported input as (column names, 2-D float64 array)."""
    if isinstance(data, str | os.PathLike):
        return read_numeric_csv(data, header=header, progress=progress)
    if isinstance(data, Mapping):
        columns = {str(k): np.asarray(v) for k, v in data.items()}
        columns = {k: v for k, v in columns.items() if v.dtype.kind in "biuf"}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        array = np.stack(list(columns.values()), axis=1) if columns else np.empty((0, 0))
        return list(columns), array.astype(np.float64)
    if isinstance(data, Tensor):  # stays on its backend: never copied whole to the host here
        array = data.detach()
    else:
        array = np.asarray(data)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"describe needs numbers, not an array of dtype {array.dtype}")
    if array.ndim == 1:
        array = array.reshape(-1, 1) if isinstance(array, Tensor) else array[:, None]
    if array.ndim != 2:
        raise ValueError(f"describe needs a 1-D or 2-D array, not shape {array.shape}")
    if names is None:
        names = [str(i) for i in range(array.shape[1])]
    elif len(names) != array.shape[1]:
        raise ValueError(f"{len(names)} names for {array.shape[1]} columns")
    if isinstance(array, Tensor):
        return [str(n) for n in names], array.cast(float64)
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
def _chunk_moments(chunk: np.ndarray | Tensor) -> list[np.ndarray]:
    """Count, mean, central moment sums M2, M3, M4, min and max of each column of a chunk of
    rows, NaNs left out: Fusion's reductions, each over the chunk once.

    A Tensor is reduced on its own backend, in two passes each computed as one (see
    :func:`fusion.persist`): counts, means and extremes, then the moments about the mean.
    """
    x = chunk if isinstance(chunk, Tensor) else Tensor(chunk, dtype=float64)
    missing = x.isnan()
    n = missing.logical_not().sum(axis=0).cast(float64)
    mean = where(n > 0, where(missing, 0.0, x).sum(axis=0) / n, 0.0)
    lowest = where(missing, math.inf, x).min(axis=0)
    highest = where(missing, -math.inf, x).max(axis=0)
    persist(n, mean, lowest, highest)
    deviation = where(missing, 0.0, x - mean)
    squares = deviation.square()
    moments = (n, mean, squares.sum(axis=0), (squares * deviation).sum(axis=0),
               squares.square().sum(axis=0), lowest, highest)
    persist(*moments)
    return [m.numpy() for m in moments]


def _merge(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    """The moments of two parts joined (the pairwise update of Chan et al. and Pebay), exact
    in exact arithmetic and stable in floating point: no sum of squares of raw values."""
    na, ma, m2a, m3a, m4a, lo_a, hi_a = a
    nb, mb, m2b, m3b, m4b, lo_b, hi_b = b
    n = na + nb
    s = np.where(n > 0, n, 1.0)  # an empty part adds nothing; 0 / 0 never happens
    d = mb - ma
    mean = ma + d * nb / s
    m2 = m2a + m2b + d**2 * na * nb / s
    m3 = (m3a + m3b + d**3 * na * nb * (na - nb) / s**2
          + 3 * d * (na * m2b - nb * m2a) / s)
    m4 = (m4a + m4b + d**4 * na * nb * (na * na - na * nb + nb * nb) / s**3
          + 6 * d**2 * (na * na * m2b + nb * nb * m2a) / s**2 + 4 * d * (na * m3b - nb * m3a) / s)
    return [n, mean, m2, m3, m4, np.minimum(lo_a, lo_b), np.maximum(hi_a, hi_b)]


def _percentiles(array: np.ndarray, count: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolated percentiles of each column, ignoring NaN, as (len(qs), columns).

    The q-quantile sits at fractional rank h = (n - 1) q between two order statistics; a
    partial sort (numpy's partition, NaN placed last) finds just those, column by column.
    """
    out = np.full((len(qs), array.shape[1]), np.nan)
    for j in range(array.shape[1]):
        n = int(count[j])
        if n == 0:
            continue
        rank = (n - 1) * np.asarray(qs, dtype=np.float64)
        below = np.floor(rank).astype(np.int64)
        above = np.minimum(below + 1, n - 1)
        ordered = np.partition(array[:, j], np.unique(np.concatenate([below, above])))
        low, high = ordered[below], ordered[above]
        out[:, j] = low + (high - low) * (rank - below)
    return out


#: The statistics that need order statistics: a partial sort of each column, on the host.
ORDERED = frozenset({"25%", "50%", "75%", "IQR"})


def _statistics(array: np.ndarray | Tensor, chunk_rows: int = CHUNK_ROWS,
                statistics: Sequence[str] = STATISTICS) -> np.ndarray:
    """The (statistic, column) table of ``statistics`` for 2-D float64 data with NaNs.

    One pass over the rows, a chunk at a time (so temporaries stay the size of a chunk), then
    one partial sort per column for the quartiles. A Tensor is reduced on its own backend,
    which cuts it into chunks as it does (the dask backend: on the workers); only the
    quartiles bring its values to the host.
    """
    if isinstance(array, Tensor):
        parts = _chunk_moments(array)
    else:
        parts = None
        for start in range(0, len(array), chunk_rows):
            moments = _chunk_moments(array[start:start + chunk_rows])
            parts = moments if parts is None else _merge(parts, moments)
    n, mean, m2, m3, m4, lowest, highest = parts
    empty = n == 0
    mean = np.where(empty, np.nan, mean)
    lowest = np.where(empty, np.nan, lowest)
    highest = np.where(empty, np.nan, highest)
    # The mean of a constant column is rounded, so its deviations are noise, not spread.
    flat = lowest == highest
    m2 = np.where(flat, 0.0, m2)
    variance = np.where(n > 1, m2 / np.where(n > 1, n - 1, 1), np.nan)
    skew = n * np.sqrt(n - 1) / (n - 2) * m3 / m2**1.5
    skew = np.where((n < 3) | flat, np.nan, skew)
    kurt = (n * (n + 1) * (n - 1) * m4 / ((n - 2) * (n - 3) * m2**2)
            - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    kurt = np.where((n < 4) | flat, np.nan, kurt)
    rows = {
        "Count": n, "Mean": mean, "Std": np.sqrt(variance), "Min": lowest, "Max": highest,
        "Missing": array.shape[0] - n, "Variance": variance,
        "Range": highest - lowest, "Skewness": skew, "Kurtosis": kurt,
    }
    if ORDERED.intersection(statistics):
        host = array.numpy() if isinstance(array, Tensor) else array
        q1, median, q3 = _percentiles(host, n, (0.25, 0.5, 0.75))
        rows.update({"25%": q1, "50%": median, "75%": q3, "IQR": q3 - q1})
    return np.stack([rows[stat] for stat in statistics])


def describe(data, columns: Sequence[str | int] | None = None, *,
             names: Sequence[str] | None = None, header: bool | None = None,
             progress: Progress | None = None,
             statistics: Sequence[str] = STATISTICS) -> Description:
    """Count, Mean, Std, Min, quartiles, Max, Missing, Variance, Range, IQR, Skewness, Kurtosis.

    ``data`` is a Tensor or numpy array (1-D: one column; 2-D: rows by columns), a mapping of
    column names to 1-D arrays, or the path of a CSV file (``header=None`` guesses whether its
    first row names the columns; text columns are skipped; the delimiter is found among
    ``, ; tab |``; a file that is empty or has no numeric column is a ValueError; a large one
    calls ``progress(bytes_read, bytes_total)`` while it is read). ``columns`` picks columns
    by name, or, where the columns have names of their own, by position among the numeric
    ones; without a header a column's name is its position in the file (``"0"``, ``"2"``,
    ...), so ``2`` is the file's column 2. ``names`` labels the columns of an array. NaN marks
    a missing value: it is counted in Missing and left out of every other statistic.
    ``statistics`` picks some of them, in that order.

    A Tensor is reduced on its own backend. On the dask backend that is out of core: the data
    is reduced chunk by chunk on the workers, in two passes, and only the results come back,
    unless the quartiles or the IQR are asked for: those need the values on the host, to sort
    them. Leave them out for data larger than this machine's memory::

        describe(big, statistics=["Count", "Mean", "Std", "Min", "Max"])

    >>> d = describe(fusion.Tensor([[1.0, 2.0], [3.0, 5.0], [5.0, 11.0]]), names=["x", "y"])
    >>> d["x"]["Std"], d.row("50%")
    (2.0, {'x': 3.0, 'y': 5.0})
    >>> print(d.to_string())  # doctest: +NORMALIZE_WHITESPACE
                      x           y
    Count             3           3
    ...
    """
    statistics = list(statistics)
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown or not statistics:
        raise ValueError(f"describe needs statistics among {list(STATISTICS)}, got "
                         f"{unknown or 'none'}")
    column_names, array = _table(data, names, header, progress)
    if columns is not None:
        column_names, array = _select(column_names, array, columns)
    if array.shape[0] == 0:  # no rows: nothing to reduce, every statistic but the counts is NaN
        values = np.full((len(statistics), array.shape[1]), np.nan)
        values[[i for i, s in enumerate(statistics) if s in COUNTS]] = 0.0
    else:
        with np.errstate(all="ignore"):  # empty and constant columns divide by zero on purpose
            values = _statistics(array, statistics=statistics)
    return Description(column_names, values, statistics)
