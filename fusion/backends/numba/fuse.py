"""Fused kernels: one numba loop nest per elementwise kernel of the schedule.

A :class:`fusion.core.kernel.Kernel` becomes Python source: one loop per axis (the outermost a
``prange`` in the parallel variant), each input read through its view (an offset plus the
loop indices times its strides, or the flat loop index for a contiguous view; a masked view
reads its fill value outside the mask), one line per instruction, one store. Every result is
converted to its dtype explicitly (numba computes int32 arithmetic in int64), and the ops use
the same scalar helpers as the backend's one-op kernels (:mod:`.vecmath`, ``vdiv``), so a
fused kernel gives what the primitives one by one give.

Compiled functions are kept per kernel structure for the life of the process (sizes,
strides, offsets and constants are arguments): one compilation serves every batch size.
They are not cached on disk yet. Kernels with a reduction, with an integer ``pow`` (whose
negative exponents the backend rejects before running) or with an input read through a
strided or masked view are not fused (see :func:`supported`): the backend receives their
primitives one by one. Importing this module imports numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fusion.core.kernel import Kernel, Leaf
from fusion.core.ops import BinaryOp, ReduceOp, TernaryOp, UnaryOp

from .kernels import _ONE_F32, vdiv
from .vecmath import vexp, vlog, vmaximum

_OPTIONS = dict(error_model="numpy", nogil=True)

_EXPRESSIONS = {
    UnaryOp.NEG: "-{0}",
    UnaryOp.EXP: "vexp({0})",
    UnaryOp.LOG: "vlog({0})",
    UnaryOp.SQRT: "np.sqrt({0})",
    UnaryOp.RECIP: "_ONE_F32 / {0}",
    UnaryOp.SIN: "np.sin({0})",
    BinaryOp.ADD: "{0} + {1}",
    BinaryOp.SUB: "{0} - {1}",
    BinaryOp.MUL: "{0} * {1}",
    BinaryOp.DIV: "vdiv({0}, {1})",
    BinaryOp.POW: "{0} ** {1}",
    BinaryOp.MAX: "vmaximum({0}, {1})",
    BinaryOp.CMPEQ: "{0} == {1}",
    BinaryOp.CMPLT: "{0} < {1}",
    TernaryOp.WHERE: "{1} if {0} else {2}",
}
_CONVERT = {"float32": "np.float32", "float64": "np.float64", "int32": "np.int32",
            "int64": "np.int64"}
_NAMESPACE = dict(np=np, prange=prange, vexp=vexp, vlog=vlog, vmaximum=vmaximum, vdiv=vdiv,
                  _ONE_F32=_ONE_F32)


def supported(kernel: Kernel) -> bool:
    """Whether the backend compiles ``kernel``: elementwise, no integer pow, and every input
    read in order (a contiguous view). Strided and masked views generate correct loops (see
    :func:`source`), but LLVM does not vectorise them yet, and they lose to the one-op
    kernels; until they are specialised they run primitive by primitive."""
    if any(kind != "contiguous" for kind in kernel.views):
        return False
    for ins in kernel.instructions:
        if isinstance(ins.op, ReduceOp):
            return False
        if ins.op is BinaryOp.POW and not ins.dtype.is_float:
            return False
        if not isinstance(ins.op, Leaf) and ins.op is not UnaryOp.CAST and \
                ins.op not in _EXPRESSIONS:
            return False
    return True


def source(kernel: Kernel, parallel: bool) -> str:
    """The Python source of ``kernel``'s loop nest (a function named ``fused``)."""
    ndim = kernel.ndim
    args = ["out", "shape"]
    for i, kind in enumerate(kernel.views):
        args += [f"in{i}", f"st{i}", f"off{i}"]
        if kind == "masked":
            args += [f"mk{i}", f"fill{i}"]
    consts = sorted({ins.arg for ins in kernel.instructions if ins.op is Leaf.CONST})
    args += [f"c{k}" for k in consts]
    lines = [f"def fused({', '.join(args)}):"]
    strided = [i for i, kind in enumerate(kernel.views) if kind != "contiguous"]
    if not strided:  # every input in order: one flat loop, as the one-op kernels run
        ndim = 1
        lines.append("    size = 1")
        lines.append("    for n in shape:")
        lines.append("        size *= n")
        lines.append("    shape = (size,)")
    for axis in range(ndim):
        lines.append(f"    n{axis} = shape[{axis}]")
        for i in strided:  # strides as scalars: loads LLVM can hoist out of the loops
            lines.append(f"    s{i}_{axis} = st{i}[{axis}]")
    indent = "    "
    outer = "0"
    partial = {i: f"off{i}" for i in strided}
    for axis in range(ndim):
        loop = "prange" if parallel and axis == 0 else "range"
        lines.append(f"{indent}for i{axis} in {loop}(n{axis}):")
        indent += "    "
        # the flat output index and each strided input's index, one loop level at a time
        lines.append(f"{indent}o{axis} = {'' if axis == 0 else f'o{axis - 1} * n{axis} + '}"
                     f"i{axis}")
        for i in strided:
            lines.append(f"{indent}p{i}_{axis} = {partial[i]} + i{axis} * s{i}_{axis}")
            partial[i] = f"p{i}_{axis}"
        outer = f"o{axis}"
    lines.append(f"{indent}o = {outer}")
    for i, kind in enumerate(kernel.views):
        index = f"off{i} + o" if kind == "contiguous" else partial[i]
        # an unsigned index: numba checks a signed one for negative wrap-around on every read,
        # which keeps LLVM from vectorising the loop
        index = f"np.uintp({index})"
        if kind == "masked":
            inside = " and ".join(f"mk{i}[{a}, 0] <= i{a} < mk{i}[{a}, 1]"
                                  for a in range(ndim)) or "True"
            lines.append(f"{indent}x{i} = in{i}[{index}] if {inside} else fill{i}")
        else:
            lines.append(f"{indent}x{i} = in{i}[{index}]")
    for k, ins in enumerate(kernel.instructions):
        if ins.op is Leaf.INPUT:
            value = f"x{ins.arg}"
        elif ins.op is Leaf.CONST:
            value = f"c{ins.arg}"
        elif ins.op is UnaryOp.CAST:
            value = f"t{ins.srcs[0]}"
            value = f"({value} != 0)" if ins.dtype.name == "bool" else \
                f"{_CONVERT[ins.dtype.name]}({value})"
        else:
            value = _EXPRESSIONS[ins.op].format(*[f"t{s}" for s in ins.srcs])
            if ins.dtype.name in _CONVERT:
                value = f"{_CONVERT[ins.dtype.name]}({value})"
        lines.append(f"{indent}t{k} = {value}")
    lines.append(f"{indent}out[np.uintp(o)] = t{len(kernel.instructions) - 1}")
    return "\n".join(lines) + "\n"


_compiled: dict[tuple[Kernel, bool], object] = {}


def compile_kernel(kernel: Kernel, parallel: bool):
    """The compiled loop nest of ``kernel`` (compiled on first use, then kept)."""
    found = _compiled.get((kernel, parallel))
    if found is None:
        namespace = dict(_NAMESPACE)
        exec(compile(source(kernel, parallel), f"<fused {kernel.key}>", "exec"), namespace)
        found = njit(parallel=parallel, **_OPTIONS)(namespace["fused"])
        _compiled[(kernel, parallel)] = found
    return found


def run(kernel: Kernel, inputs, views, constants, shape: tuple[int, ...],
        parallel: bool) -> np.ndarray:
    """Run ``kernel`` over numpy ``inputs`` read through ``views``; a new array of ``shape``."""
    out = np.empty(math.prod(shape), kernel.output.dtype.np)
    if out.size == 0:
        return out.reshape(shape)
    args = [out, np.asarray(shape, np.int64).reshape(len(shape))]
    for data, view in zip(inputs, views, strict=True):
        flat = np.ascontiguousarray(data).reshape(-1)
        args += [flat, np.asarray(view.strides, np.int64).reshape(len(shape)), view.offset]
        if view.mask is not None:
            args += [np.asarray(view.mask, np.int64).reshape(len(shape), 2),
                     flat.dtype.type(view.fill)]
    dtypes = {ins.arg: ins.dtype.np for ins in kernel.instructions if ins.op is Leaf.CONST}
    args += [dtypes[k].type(constants[k]) for k in sorted(dtypes)]
    compile_kernel(kernel, parallel)(*args)
    return out.reshape(shape)
