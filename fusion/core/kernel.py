"""The kernel description: one pass over memory, as plain hashable data.

The scheduler (:mod:`fusion.core.schedule`) cuts the lazy graph into kernels. A kernel
computes one output from any number of inputs, each read through a :class:`~.view.View`, with
any number of elementwise ops and at most one reduction, which is then its last instruction.
For a backend that sets ``row_reductions = True`` a kernel may also hold reductions over the
last axis before its last instruction (a *row kernel*): each yields one value per row, which the
later instructions read as if broadcast along that axis. A row softmax is one such kernel::

    t0 = input0; t1 = reduce_max t0 axes=(1,); t2 = sub t0 t1; t3 = exp t2
    t4 = reduce_sum t3 axes=(1,); t5 = div t3 t4

A :class:`Kernel` is the *structure* of that computation and nothing else: instructions in
order (each names earlier ones by position), dtypes, the number of loop axes, the kind of view
each input is read through and the reduced axes. Sizes, strides, offsets and the values of
constants are not part of it; they come with each launch. So a kernel is a stable key for a
compiled program: one compilation serves every batch size, and a constant that changes from
step to step (a learning rate, Adam's bias correction) does not make a new kernel.

A backend that declares the capability ``"fuse"`` receives kernels whole::

    def fuse(self, kernel, inputs, views, constants, shape):
        # inputs: backend arrays; views[i]: how input i is read (view.shape == shape);
        # constants: Python numbers, constants[k] for an instruction (CONST, (), k, dtype);
        # shape: the loop shape. Returns the output: shape, with reduced axes kept as size 1.

and :func:`evaluate` is the reference it must agree with. Every other backend receives the
primitives of each kernel one by one.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np

from .dtypes import DType
from .ops import ContractOp, ReduceOp, UnaryOp
from .view import View


class Leaf(Enum):
    """Where a kernel's values come from: an input read through its view, or a constant."""

    INPUT = "input"
    CONST = "const"


class Instruction(NamedTuple):
    """One step: ``op`` applied to the results of the instructions at positions ``srcs``.

    ``arg`` is the input's or constant's number for a :class:`Leaf`, the target dtype for
    CAST, the reduced axes for a reduction; ``dtype`` is the result's. (A named tuple: the
    scheduler makes these for every kernel of every realisation, and tuples are made, hashed
    and compared at C speed.)
    """

    op: Enum
    srcs: tuple[int, ...]
    arg: object
    dtype: DType

    def __str__(self) -> str:
        name = self.op.value
        if self.op is Leaf.INPUT:
            return f"{name}{self.arg} {self.dtype.name}"
        if self.op is Leaf.CONST:
            return f"{name}{self.arg} {self.dtype.name}"
        srcs = " ".join(f"t{s}" for s in self.srcs)
        if self.op is UnaryOp.CAST:
            return f"{name} {srcs} -> {self.dtype.name}"
        if isinstance(self.op, ReduceOp):
            return f"{name} {srcs} axes={self.arg} {self.dtype.name}"
        return f"{name} {srcs} {self.dtype.name}"


@dataclass(frozen=True)
class Kernel:
    """The structure of one kernel (see the module docstring); hashable, size-free."""

    instructions: tuple[Instruction, ...]
    ndim: int
    views: tuple[str, ...]  # the kind of view each input is read through

    def __hash__(self) -> int:
        # computed once: a backend looks its compiled kernels up by kernel at every launch
        found = self.__dict__.get("_hash")
        if found is None:
            found = hash((self.instructions, self.ndim, self.views))
            object.__setattr__(self, "_hash", found)
        return found

    @functools.cached_property
    def key(self) -> str:
        """A short digest of the structure (stable across processes)."""
        return hashlib.sha1(str(self).encode()).hexdigest()[:10]

    @property
    def output(self) -> Instruction:
        return self.instructions[-1]

    @property
    def reduce_axes(self) -> tuple[int, ...]:
        """The axes the kernel reduces (kept with size 1 in its output), or ()."""
        last = self.output
        return last.arg if isinstance(last.op, ReduceOp) else ()

    @property
    def row_axes(self) -> tuple[int, ...]:
        """The axes of the kernel's reductions, wherever they are (the last axis in a row
        kernel), or () for a kernel without one."""
        for ins in self.instructions:
            if isinstance(ins.op, ReduceOp):
                return ins.arg
        return ()

    @property
    def ops(self) -> list[Enum]:
        """The computing ops, in order (no loads, no constants)."""
        return [i.op for i in self.instructions if not isinstance(i.op, Leaf)]

    @property
    def name(self) -> str:
        """A short name: ``r_`` for a reduction, ``c_`` for a contraction, ``e_`` otherwise,
        the ops it computes and the first characters of its key."""
        last = self.output.op
        prefix = "r" if isinstance(last, ReduceOp) else "c" if isinstance(last, ContractOp) \
            else "e"
        ops = [op.value.replace("reduce_", "") for op in self.ops] or ["copy"]
        if len(ops) > 4:
            ops = [*ops[:2], f"{len(ops) - 3}more", ops[-1]]
        return f"{prefix}_{'_'.join(ops)}_{self.key[:6]}"

    def __str__(self) -> str:
        views = ", ".join(f"in{i}:{v}" for i, v in enumerate(self.views))
        lines = [f"kernel {self.ndim}-d ({views})"]
        lines += [f"  t{i} = {ins}" for i, ins in enumerate(self.instructions)]
        return "\n".join(lines)


# --- the reference: what a backend's ``fuse`` must compute ----------------------------------
def read(array: np.ndarray, view: View) -> np.ndarray:
    """The values ``view`` reads from ``array`` (any numpy array), as a new array."""
    flat = np.ascontiguousarray(array).reshape(-1)
    shape = view.shape
    if 0 in shape:
        return np.empty(shape, array.dtype)
    index = np.full(shape, view.offset, dtype=np.int64)
    valid = None
    for axis, (n, stride) in enumerate(zip(shape, view.strides, strict=True)):
        position = np.arange(n).reshape([n if a == axis else 1 for a in range(len(shape))])
        index = index + position * stride
        if view.mask is not None:
            lo, hi = view.mask[axis]
            ok = (position >= lo) & (position < hi)
            valid = ok if valid is None else valid & ok
    if valid is None:
        return flat[index]
    valid = np.broadcast_to(valid, shape)
    out = np.empty(shape, array.dtype)
    out[...] = view.fill
    out[valid] = flat[index[valid]]
    return out


def evaluate(kernel: Kernel, inputs, views, constants, shape: tuple[int, ...]) -> np.ndarray:
    """Run ``kernel`` with numpy (the numpy backend's primitives), one instruction at a time.

    The reference for a backend's ``fuse``: same arguments, numpy arrays in and out.
    """
    from ..backends.numpy.backend import NumpyBackend

    prims = NumpyBackend()
    values: list[np.ndarray] = []
    for ins in kernel.instructions:
        if ins.op is Leaf.INPUT:
            value = read(np.asarray(inputs[ins.arg]), views[ins.arg]).astype(ins.dtype.np,
                                                                            copy=False)
        elif ins.op is Leaf.CONST:
            value = np.full(shape, constants[ins.arg], dtype=ins.dtype.np)
        elif ins.op is UnaryOp.CAST:
            value = prims.cast(values[ins.srcs[0]], ins.arg)
        elif isinstance(ins.op, ReduceOp):
            value = getattr(prims, ins.op.value)(values[ins.srcs[0]], ins.arg)
            if ins is not kernel.output:  # a row kernel's reduction, read along its rows
                value = np.broadcast_to(value, shape)
        else:
            value = getattr(prims, ins.op.value)(*[values[s] for s in ins.srcs])
        values.append(np.asarray(value))
    return values[-1]
