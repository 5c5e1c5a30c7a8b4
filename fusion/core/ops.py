"""The primitive set: everything a backend is asked to do.

This module is the whole vocabulary between the frontend and a backend. Binary and ternary
primitives always receive operands of one shape and one dtype (the frontend broadcasts and
promotes first); reductions keep reduced axes with size 1.
"""

from __future__ import annotations

from enum import Enum


class UnaryOp(Enum):
    NEG = "neg"
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    RECIP = "recip"
    SIN = "sin"
    CAST = "cast"  # takes a target dtype


class BinaryOp(Enum):
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    POW = "pow"
    MAX = "maximum"  # elementwise maximum
    CMPEQ = "cmpeq"
    CMPLT = "cmplt"


class TernaryOp(Enum):
    WHERE = "where"


class ReduceOp(Enum):
    SUM = "reduce_sum"
    MAX = "reduce_max"


class MovementOp(Enum):
    RESHAPE = "reshape"
    EXPAND = "expand"
    PERMUTE = "permute"
    PAD = "pad"
    SHRINK = "shrink"
    FLIP = "flip"


class LoadOp(Enum):
    """Creation and transfer."""

    FROM_NUMPY = "from_numpy"
    TO_NUMPY = "to_numpy"
    FULL = "full"


PRIMITIVES = (UnaryOp, BinaryOp, TernaryOp, ReduceOp, MovementOp, LoadOp)

#: The method names a backend must provide: one per primitive, named by its value.
REQUIRED_METHODS: tuple[str, ...] = tuple(op.value for group in PRIMITIVES for op in group)
#: Optional: ``contract(x, y)``, a batched matmul (the fast path), and ``persist(arrays)``, for
#: backends that compute lazily or remotely (see the comments at the end of Backend).
OPTIONAL_METHODS: tuple[str, ...] = ("contract", "persist")
