"""The primitive set: everything a backend is asked to do.

This module is the whole vocabulary between the frontend and a backend, and the identity of
every node of the lazy graph (:mod:`fusion.core.buffer`). Binary and ternary primitives always
receive operands of one shape and one dtype (the frontend broadcasts and promotes first);
reductions keep reduced axes with size 1. Every list of primitives elsewhere (the Backend
methods, the numba dispatch table, the conformance suite's coverage) derives from the enums
below: adding a primitive here is the one place to start.
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


class ContractOp(Enum):
    """The optional fast path: ``contract(x, y)`` is a batched matmul (see Backend.contract)."""

    CONTRACT = "contract"


PRIMITIVES = (UnaryOp, BinaryOp, TernaryOp, ReduceOp, MovementOp, LoadOp)

#: The ops a fused kernel computes element by element.
ELEMENTWISE: tuple[Enum, ...] = (*UnaryOp, *BinaryOp, *TernaryOp)
#: Elementwise ops whose result is bool whatever their operands' dtype.
COMPARISONS = frozenset({BinaryOp.CMPEQ, BinaryOp.CMPLT})
#: The number of operands of each elementwise op.
ARITY: dict[Enum, int] = {**{op: 1 for op in UnaryOp}, **{op: 2 for op in BinaryOp},
                          **{op: 3 for op in TernaryOp}}

#: The method names a backend must provide: one per primitive, named by its value.
REQUIRED_METHODS: tuple[str, ...] = tuple(op.value for group in PRIMITIVES for op in group)
#: The optional methods: ``contract(x, y)``, a batched matmul (the fast path, named by its op),
#: and ``persist(arrays)``, for backends that compute lazily or remotely (see the comments at the
#: end of Backend).
OPTIONAL_METHODS: tuple[str, ...] = (*(op.value for op in ContractOp), "persist")
