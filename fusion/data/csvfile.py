"""Reading the numeric columns of a CSV file, fast and in bounded memory.

:func:`read_numeric_csv` finds the file's layout from its first lines (the delimiter among
``, ; tab |``, a decimal comma in semicolon-separated files, whether the first row names the
columns), then reads it in chunks of rows: with pandas' C parser where pandas is installed,
else with the standard library's ``csv`` module and numpy's conversion of whole columns. Each
column is kept as float64 only while it holds numbers; a column with a field that is neither a
number nor a missing-value marker is text and is dropped (or returned as strings, when asked
for as the label column). ``progress(bytes_read, bytes_total)`` is called after every chunk.

A file that is empty, has no row of data, or has no numeric column is a :class:`ValueError`
whose message is one line naming the file. A row with more fields than the first is an error
too; a row with fewer is an error for the standard-library reader, while pandas' reader reads
its missing fields as missing values.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: The spellings of a missing value (compared without case and surrounding spaces).
MISSING = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "?"})
DELIMITERS = (",", ";", "\t", "|")
CHUNK_ROWS = 1 << 16
_SNIFF_BYTES = 1 << 16

Progress = Callable[[int, int], None]


class Layout(NamedTuple):
    """How a CSV file is written: its delimiter, decimal mark, header and column names."""

    delimiter: str
    decimal: str
    header: bool
    names: list[str]


class Columns(NamedTuple):
    """What :func:`read_csv_columns` read: numeric column names and values ``(rows, k)``,
    and the label column's fields as strings (None when no label was asked for)."""

    names: list[str]
    values: np.ndarray
    labels: np.ndarray | None


def parse_field(field: str, decimal: str = ".") -> float | None:
    """The number in a CSV field, NaN when it marks a missing value, None when it is text."""
    text = field.strip()
    if text.lower() in MISSING:
        return math.nan
    if decimal != ".":
        text = text.replace(decimal, ".")
    try:
        return float(text)
    except ValueError:
        return None


def sniff(path: str | os.PathLike, header: bool | None = None,
          delimiter: str | None = None) -> Layout:
    """The layout of a CSV file, found from its first lines.

    The delimiter is the first of ``, ; tab |`` that splits every sampled line into the same
    number (more than one) of fields; a single-column file uses ``,``. A semicolon-separated
    file whose fields read as numbers only with a decimal comma (``1,5``) gets ``decimal=","``.
    ``header=None`` guesses: the first row names the columns when none of its fields is a
    number. Without a header a column is named by its position (``"0"``, ``"1"``, ...).

    >>> sniff("data.csv")  # doctest: +SKIP
    Layout(delimiter=',', decimal='.', header=False, names=['0', '1', ...])
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        sample = f.read(_SNIFF_BYTES)
        complete = len(sample) < _SNIFF_BYTES
    lines = [line for line in sample.splitlines() if line.strip()]
    if not complete and lines:
        lines = lines[:-1] or lines  # the last line may be cut in the middle
    if not lines:
        raise ValueError(f"{os.fspath(path)}: the file is empty")
    lines = lines[:50]
    if delimiter is None:
        delimiter = ","
        for candidate in DELIMITERS:
            counts = {len(row) for row in csv.reader(lines, delimiter=candidate)}
            if len(counts) == 1 and counts.pop() > 1:
                delimiter = candidate
                break
    rows = list(csv.reader(lines, delimiter=delimiter))
    decimal = "."
    if delimiter == ";":
        fields = [field for row in rows[1:] or rows for field in row]
        plain = sum(parse_field(f) is not None for f in fields)
        comma = sum(parse_field(f, ",") is not None for f in fields)
        if comma > plain:
            decimal = ","
    first = rows[0]
    if header is None:
        header = all(parse_field(field, decimal) is None for field in first)
    names = [name.strip() for name in first] if header else [str(i) for i in range(len(first))]
    return Layout(delimiter, decimal, header, names)


def _label_position(label: int | str | None, names: list[str]) -> int | None:
    if label is None:
        return None
    if isinstance(label, str) and label in names:
        return names.index(label)
    if isinstance(label, int) or label.lstrip("-").isdigit():
        position = int(label)
        if not -len(names) <= position < len(names):
            raise IndexError(f"label column {label} is out of range for {len(names)} columns")
        return position % len(names)
    raise KeyError(f"no label column {label!r}; the columns are {names}")


class _Collector:
    """The float64 chunks of every column still numeric, and the label's strings."""

    def __init__(self, width: int, label: int | None):
        self.chunks: list[list[np.ndarray] | None] = [[] for _ in range(width)]
        self.label = label
        self.label_chunks: list[np.ndarray] = []
        if label is not None:
            self.chunks[label] = None
        self.rows = 0

    def add(self, j: int, values: np.ndarray | None) -> None:
        """Append column ``j``'s next chunk; ``None`` (text found) drops the column."""
        if values is None:
            self.chunks[j] = None  # the column is not numeric: its chunks are freed
        else:
            self.chunks[j].append(values)

    def finish(self, names: list[str], path) -> Columns:
        keep = [j for j, chunks in enumerate(self.chunks) if chunks is not None]
        if self.rows == 0:
            raise ValueError(f"{os.fspath(path)}: no rows of data"
                             + (" (only a header)" if names else ""))
        values = np.empty((self.rows, len(keep)), dtype=np.float64)
        for k, j in enumerate(keep):
            start = 0
            for chunk in self.chunks[j]:
                values[start:start + len(chunk), k] = chunk
                start += len(chunk)
            self.chunks[j] = []  # freed as soon as copied
        labels = np.concatenate(self.label_chunks) if self.label is not None else None
        return Columns([names[j] for j in keep], values, labels)


def _numbers_in_text(column, decimal: str) -> np.ndarray | None:
    """A column pandas left as text, read as parse_field would (spaces around a number or a
    missing marker, any case of the markers); None when some field is text."""
    import pandas as pd

    text = column.astype(object).where(column.notna(), "").astype(str).str.strip()
    missing = text.str.lower().isin(MISSING)
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    try:
        values = pd.to_numeric(text.mask(missing), errors="raise")
    except (ValueError, TypeError):
        return None
    return values.to_numpy(dtype=np.float64)


def _read_with_pandas(path, layout: Layout, label: int | None, progress: Progress | None,
                      total: int) -> Columns:
    import pandas as pd

    width = len(layout.names)
    missing = sorted({v for m in MISSING for v in (m, m.upper(), m.title())})
    collector = _Collector(width, label)
    with open(path, "rb") as f:
        reader = pd.read_csv(
            f, sep=layout.delimiter, decimal=layout.decimal, header=None,
            skiprows=1 if layout.header else 0, names=range(width), index_col=False,
            na_values=missing, keep_default_na=True, skipinitialspace=True,
            skip_blank_lines=True, dtype={label: str} if label is not None else None,
            chunksize=CHUNK_ROWS, on_bad_lines="error", engine="c")
        try:
            for frame in reader:
                collector.rows += len(frame)
                for j in range(width):
                    column = frame[j]
                    if j == label:
                        collector.label_chunks.append(
                            column.fillna("").astype(str).str.strip().to_numpy(dtype=object))
                    elif collector.chunks[j] is None:
                        continue
                    elif column.dtype.kind in "iuf":
                        collector.add(j, column.to_numpy(dtype=np.float64))
                    else:
                        collector.add(j, _numbers_in_text(column, layout.decimal))
                if progress is not None:
                    progress(min(f.tell(), total), total)
        except pd.errors.ParserError as error:
            raise ValueError(f"{os.fspath(path)}: {str(error).strip()}") from None
    return collector.finish(layout.names, path)


def _convert(fields: tuple[str, ...], decimal: str) -> np.ndarray | None:
    """A column of fields as float64 (numpy converts the plain ones at C speed), None if text."""
    if decimal == ".":
        try:
            return np.array(fields, dtype=np.float64)
        except ValueError:
            pass  # a missing marker, spaces numpy refuses, or text: field by field
    values = [parse_field(field, decimal) for field in fields]
    if any(v is None for v in values):
        return None
    return np.array(values, dtype=np.float64)


def _read_with_csv(path, layout: Layout, label: int | None, progress: Progress | None,
                   total: int) -> Columns:
    width = len(layout.names)
    collector = _Collector(width, label)
    line_number = 1 if layout.header else 0
    done = 0
    with open(path, newline="", encoding="utf-8") as f:
        if layout.header:
            done += len(next(f).encode())
        while True:
            lines = list(itertools.islice(f, CHUNK_ROWS))
            if not lines:
                break
            done += sum(map(len, lines))
            rows = []
            for row in csv.reader(lines, delimiter=layout.delimiter):
                line_number += 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                if len(row) != width:
                    raise ValueError(f"{os.fspath(path)}: line {line_number} has {len(row)} "
                                     f"fields, expected {width}")
                rows.append(row)
            if not rows:
                continue
            collector.rows += len(rows)
            for j, fields in enumerate(zip(*rows, strict=True)):
                if j == label:
                    collector.label_chunks.append(
                        np.array([field.strip() for field in fields], dtype=object))
                elif collector.chunks[j] is not None:
                    collector.add(j, _convert(fields, layout.decimal))
            if progress is not None:
                progress(min(done, total), total)
    return collector.finish(layout.names, path)


def _pandas_available() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def read_csv_columns(path: str | os.PathLike, header: bool | None = None,
                     delimiter: str | None = None, *, label: int | str | None = None,
                     engine: str = "auto", progress: Progress | None = None) -> Columns:
    """The numeric columns of a CSV file, and optionally one more column as labels.

    ``label`` (a name, or a position in the file) is returned as stripped strings and left
    out of the numeric columns. ``engine`` is ``"pandas"``, ``"python"`` (the standard
    library, in chunks) or ``"auto"`` (pandas where installed). Raises ValueError for a file
    that is empty or has no row of data, or a row with the wrong number of fields.

    >>> names, values, labels = read_csv_columns("data.csv", label=1)  # doctest: +SKIP
    """
    if engine not in ("auto", "pandas", "python"):
        raise ValueError(f"engine must be 'auto', 'pandas' or 'python', not {engine!r}")
    layout = sniff(path, header, delimiter)
    position = _label_position(label, layout.names)
    total = os.path.getsize(path)
    use_pandas = engine == "pandas" or (engine == "auto" and _pandas_available())
    read = _read_with_pandas if use_pandas else _read_with_csv
    return read(path, layout, position, progress, total)


def read_numeric_csv(path: str | os.PathLike, header: bool | None = None,
                     delimiter: str | None = None, *, engine: str = "auto",
                     progress: Progress | None = None) -> tuple[list[str], np.ndarray]:
    """The numeric columns of a CSV file as (names, float64 array of shape (rows, columns)).

    The layout is found as :func:`sniff` does. A column with a field that is neither a number
    nor a missing marker (empty, NA, NaN, null, ...) is skipped. A file without any numeric
    column is a ValueError naming its columns.

    >>> names, array = read_numeric_csv("data.csv")  # doctest: +SKIP
    """
    names, values, _ = read_csv_columns(path, header, delimiter, engine=engine,
                                        progress=progress)
    if not names:
        layout = sniff(path, header, delimiter)
        shown = ", ".join(layout.names[:8]) + (", ..." if len(layout.names) > 8 else "")
        raise ValueError(f"{os.fspath(path)}: no numeric column (every column holds text: "
                         f"{shown}; the delimiter read was {layout.delimiter!r})")
    return names, values


__all__ = ["Columns", "Layout", "parse_field", "read_csv_columns", "read_numeric_csv", "sniff"]
