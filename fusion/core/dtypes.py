"""The five dtypes, the promotion table and conversions from numpy and Python values.

Promotion follows one rule: the dtype later in ``bool < int32 < int64 < float32 < float64``
wins, except that an integer tensor meeting a Python float becomes float32 (the default float).
Python scalars are *weak*: ``t + 1`` keeps ``t``'s dtype, ``int_tensor + 0.5`` is float32.
A Python integer that the integer dtype it takes cannot hold is an OverflowError on every
backend (``int32_tensor + 2**40``), never a silent wrap-around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class DType:
    name: str
    rank: int  # position in the promotion order
    itemsize: int
    kind: str  # "b", "i" or "f"

    @property
    def np(self) -> np.dtype:
        return _TO_NUMPY[self]

    @property
    def is_float(self) -> bool:
        return self.kind == "f"

    @property
    def is_int(self) -> bool:
        return self.kind == "i"

    def __repr__(self) -> str:
        return f"fusion.{self.name}"

    def __reduce__(self):  # pickles as the singleton
        return (to_dtype, (self.name,))


bool_ = DType("bool", 0, 1, "b")
int32 = DType("int32", 1, 4, "i")
int64 = DType("int64", 2, 8, "i")
float32 = DType("float32", 3, 4, "f")
float64 = DType("float64", 4, 8, "f")

DTYPES: tuple[DType, ...] = (bool_, int32, int64, float32, float64)
default_float = float32
default_int = int64

_BY_NAME = {d.name: d for d in DTYPES}
_TO_NUMPY = {d: np.dtype(d.name) for d in DTYPES}
_FROM_NUMPY = {np.dtype(d.name): d for d in DTYPES}


def to_dtype(value) -> DType:
    """Return the DType named by a DType, a name ("float32") or a numpy dtype or type."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    if value is bool:
        return bool_
    if value is int:
        return default_int
    if value is float:
        return default_float
    try:
        npd = np.dtype(value)
    except TypeError:
        npd = None
    if npd is not None and npd in _FROM_NUMPY:
        return _FROM_NUMPY[npd]
    raise TypeError(
        f"unknown dtype {value!r}; expected one of {', '.join(d.name for d in DTYPES)}"
    )


def from_numpy_dtype(npd: np.dtype) -> DType:
    """The DType an array of numpy dtype `npd` becomes: narrow ints widen, float16 -> float32."""
    if npd in _FROM_NUMPY:
        return _FROM_NUMPY[npd]
    if npd.kind in "iu":
        return int32 if npd.itemsize < 4 or (npd.kind == "i" and npd.itemsize == 4) else int64
    if npd.kind == "f" and npd.itemsize < 4:
        return float32
    raise TypeError(
        f"cannot make a tensor from numpy dtype {npd}; "
        f"supported: {', '.join(d.name for d in DTYPES)} (and narrower ints, float16)"
    )


def promote(a: DType, b: DType) -> DType:
    """The dtype of a binary operation between two tensors of dtypes `a` and `b`."""
    return a if a.rank >= b.rank else b


def scalar_dtype(value, other: DType) -> DType:
    """The dtype of an operation between a tensor of dtype `other` and a Python scalar."""
    if isinstance(value, bool):
        return other
    if isinstance(value, int):
        dtype = other if other.kind != "b" else default_int
        check_fits(value, dtype)
        return dtype
    if isinstance(value, float):
        return other if other.is_float else default_float
    raise TypeError(f"expected a number, got {type(value).__name__}")


def check_fits(value, dtype: DType) -> None:
    """Raise OverflowError if integer ``dtype`` cannot hold the Python number ``value`` (it is
    out of range, or not finite); float and bool dtypes take any number."""
    bounds = _INT_RANGE.get(dtype)
    if bounds is None or isinstance(value, bool):
        return
    low, high = bounds
    if isinstance(value, float) and not math.isfinite(value):
        raise OverflowError(f"{value} cannot be held by {dtype.name}")
    if not low <= math.trunc(value) <= high:  # a float is truncated toward 0, as a cast does
        raise OverflowError(f"{value} is out of range for {dtype.name} "
                            f"(from {low} to {high})")


_INT_RANGE = {d: (-(1 << (8 * d.itemsize - 1)), (1 << (8 * d.itemsize - 1)) - 1)
              for d in DTYPES if d.is_int}
