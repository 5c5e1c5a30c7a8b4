"""The school's ``data.csv`` format: reading it with checks, writing it, splitting it.

A row is ``id,diagnosis,f1,...,f30``: no header, column 1 an identifier, column 2 the diagnosis
(``M`` malignant or ``B`` benign), then 30 real-valued features of the cell nuclei (the mean,
standard error and worst value of ten measurements). Every problem in a file is reported as an
:class:`InputError` naming the file, the row (its line number) and the column (from 1), so that
the command line can print one line and never a traceback.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusion.files import NotARegularFileError, atomic_write, open_regular

FEATURES = 30
COLUMNS = 2 + FEATURES
#: The diagnosis letters in class order: label 0 is benign, label 1 (the positive class) is
#: malignant, so precision and recall speak of finding cancers.
CLASSES = ("B", "M")


class InputError(Exception):
    """A file, a value or a setting the program cannot use; the message is one line."""


@dataclass
class Samples:
    """The rows of one file: ids as written, features ``(n, 30)`` float64, labels 0 (B) / 1 (M),
    and the raw text of every row (to write a split back exactly as it was read)."""

    path: str
    ids: list[str]
    X: np.ndarray
    y: np.ndarray
    rows: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)

    def counts(self) -> str:
        """``"72 B, 42 M"``: how many samples each class has."""
        return ", ".join(f"{int(np.sum(self.y == k))} {name}" for k, name in enumerate(CLASSES))


def _where(path: str, row: int | None = None, column: int | None = None) -> str:
    parts = [os.fspath(path)]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column}")
    return ", ".join(parts)


def _number(text: str, path: str, row: int, column: int) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise InputError(f"{_where(path, row, column)}: {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{_where(path, row, column)}: {text!r} is not a finite number")
    return value


def _read_rows(path: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"{_where(path)}: no such file")
    if file.is_dir():
        raise InputError(f"{_where(path)}: is a folder, not a CSV file")
    try:
        # a regular file only: a FIFO would block, a device would never end
        with open_regular(file) as raw, \
                io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader
                    if any(cell.strip() for cell in row)]
    except NotARegularFileError as exc:
        raise InputError(f"{_where(path)}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{_where(path)}: is not a text CSV file (not UTF-8)") from None
    except csv.Error as exc:
        raise InputError(f"{_where(path)}: is not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise InputError(f"{_where(path)}: cannot be read ({exc.strerror or exc})") from None
    return rows


def read_samples(path: str | os.PathLike) -> Samples:
    """Read and check a file in the ``data.csv`` format; :class:`InputError` on any problem.

    >>> samples = read_samples("data_train.csv")  # doctest: +SKIP
    >>> samples.X.shape, samples.counts()  # doctest: +SKIP
    ((455, 30), '285 B, 170 M')
    """
    path = os.fspath(path)
    rows = _read_rows(path)
    if not rows:
        raise InputError(f"{_where(path)}: is empty; expected rows of id, diagnosis (M or B) "
                         f"and {FEATURES} features")
    ids, labels, features, raw = [], [], [], []
    for line, row in rows:
        if len(row) != COLUMNS:
            raise InputError(f"{_where(path, line)}: {len(row)} columns, expected {COLUMNS} "
                             f"(id, diagnosis M or B, {FEATURES} features)")
        cells = [cell.strip() for cell in row]
        if not cells[0]:
            raise InputError(f"{_where(path, line, 1)}: the id is empty")
        if cells[1] not in CLASSES:
            raise InputError(f"{_where(path, line, 2)}: unknown diagnosis {cells[1]!r}, "
                             "expected M (malignant) or B (benign)")
        features.append([_number(text, path, line, column)
                         for column, text in enumerate(cells[2:], start=3)])
        ids.append(cells[0])
        labels.append(CLASSES.index(cells[1]))
        raw.append(row)
    return Samples(path, ids, np.asarray(features, dtype=np.float64),
                   np.asarray(labels, dtype=np.int64), raw)


def write_rows(path: str | os.PathLike, rows: list[list[str]]) -> None:
    """Write rows of text in the ``data.csv`` format (no header)."""
    try:
        with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot be written ({exc.strerror or exc})") \
            from None


def bundled_rows() -> list[list[str]]:
    """The Wisconsin data as ``data.csv`` rows, from the copy scikit-learn ships.

    scikit-learn labels malignant 0 and benign 1; the letters here say which is which. Its copy
    has no sample ids, so rows are numbered from 1 in their original order.
    """
    from fusion.datasets import breast_cancer

    bunch = breast_cancer(as_bunch=True, dtype=np.float64)
    letter = {bunch.target_names.index("malignant"): "M", bunch.target_names.index("benign"): "B"}
    # repr gives the shortest text that reads back as the same float: no digits lost or invented
    return [[str(i), letter[int(label)], *(repr(float(v)) for v in features)]
            for i, (features, label) in enumerate(zip(bunch.data, bunch.target, strict=True),
                                                  start=1)]


def split_samples(samples: Samples, valid: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the training and validation rows: stratified on the diagnosis, seeded."""
    from fusion.data import train_test_split

    for k, name in enumerate(CLASSES):
        if np.sum(samples.y == k) < 2:
            raise InputError(f"{samples.path}: has fewer than 2 samples diagnosed {name}; a "
                             "stratified split needs at least 2 of each")
    try:
        train, valid_part = train_test_split(np.arange(len(samples)), test_size=valid, seed=seed,
                                             stratify=samples.y)
    except ValueError as exc:
        raise InputError(f"{samples.path}: cannot split {len(samples)} samples with --valid "
                         f"{valid} ({exc})") from None
    return train.tolist(), valid_part.tolist()
