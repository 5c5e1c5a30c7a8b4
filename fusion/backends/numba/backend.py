"""The numba backend class: validates, lays out and allocates; the kernels only loop.

``data`` is a numpy ndarray, as in the numpy backend (numba compiles functions of numpy
arrays), so creation, transfer and the movement primitives are numpy views, exactly as there.
Importing this module does not import numba: the kernels are loaded when the registry first
instantiates :class:`NumbaBackend`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from fusion.core.backend import Backend
from fusion.core.dtypes import DType
from fusion.core.ops import ELEMENTWISE

from . import compiling, config, threads
from .pool import BufferPool

# Where the numba kernels fall back to numpy (the contraction, tiny reductions' merges), the
# documented results inf/-inf/nan are not warnings; see fusion/backends/numpy/backend.py.
warnings.filterwarnings(
    "ignore",
    message=r"(divide by zero|overflow|invalid value|underflow) encountered",
    category=RuntimeWarning,
    module=r"fusion\.",
)

_INT_KINDS = "iu"


#: One kernel (serial and parallel) per elementwise primitive, named as the primitive.
_ELEMENTWISE = tuple(op.value for op in ELEMENTWISE)


def _require_float(name: str, x: np.ndarray) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{name} expects a float32 or float64 array, got {x.dtype}")


def _require_numeric(name: str, x: np.ndarray) -> None:
    if x.dtype.kind == "b":
        raise TypeError(f"{name} is not defined for bool arrays (got {x.dtype})")


def _is_scalar_broadcast(a: np.ndarray) -> bool:
    """All elements share one memory location (an expanded constant)."""
    strides = a.strides
    if 0 not in strides:
        return False
    if not any(strides):
        return a.size > 1
    return a.size > 1 and all(s == 0 or n == 1 for s, n in zip(strides, a.shape, strict=True))


def _inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes ``order``."""
    inverse = [0] * len(order)
    for i, axis in enumerate(order):
        inverse[axis] = i
    return tuple(inverse)


def _flat(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` as the 1-D contiguous operand a kernel takes: size ``n``, or size 1 if broadcast."""
    if a.size == n and a.flags.c_contiguous:
        return a.reshape(-1)
    if _is_scalar_broadcast(a):
        return a.reshape(-1)[:1].copy()
    return np.ascontiguousarray(a).reshape(-1)


def _shared_broadcast(arrays: tuple[np.ndarray, ...]) -> tuple[tuple[np.ndarray, ...], bool]:
    """Drop the axes along which every operand is broadcast (stride 0): compute once, expand."""
    if not all(0 in a.strides for a in arrays):
        return arrays, False
    shape = arrays[0].shape
    axes = [i for i, n in enumerate(shape) if n > 1 and all(a.strides[i] == 0 for a in arrays)]
    if not axes:
        return arrays, False
    index = tuple(slice(0, 1) if i in axes else slice(None) for i in range(len(shape)))
    return tuple(a[index] for a in arrays), True


def _contiguous_order(x: np.ndarray) -> tuple[int, ...] | None:
    """An axis order that makes ``x`` C-contiguous (x is a permuted contiguous array), or None."""
    strides = x.strides
    order = tuple(sorted(range(x.ndim), key=lambda i: -strides[i]))
    return order if x.transpose(order).flags.c_contiguous else None


def _common_order(arrays: tuple[np.ndarray, ...]) -> tuple[int, ...] | None:
    """A non-trivial axis order in which every operand that is not a broadcast scalar is
    C-contiguous (all are the same transposed layout), or None."""
    dense = [a for a in arrays if not _is_scalar_broadcast(a)]
    if not dense:
        return None
    order = _contiguous_order(dense[0])
    if order is None or order == tuple(range(len(order))):
        return None
    if all(a.transpose(order).flags.c_contiguous for a in dense[1:]):
        return order
    return None


def _read_only(operands) -> None:
    """Mark a kernel's input views read-only (fresh views: their owners are unaffected).

    numba compiles a kernel once per argument type, and a read-only array is a type of its
    own: inputs arriving writable on one call and read-only on the next (frozen constants,
    realised buffers) would compile and cache each kernel up to 2**inputs times. Every input
    read-only makes one compilation per dtype serve them all.
    """
    for a in operands:
        a.setflags(write=False)


def _nonempty_parts(n: int, want: int) -> int:
    """How many of ``want`` aligned spans of ``range(n)`` (kernels._span) are non-empty."""
    step = -(-n // want)
    step = -(-step // 64) * 64
    return -(-n // step)


class NumbaBackend(Backend):
    """Every primitive as a numba kernel (see :mod:`fusion.backends.numba`); elementwise
    kernels of the lazy schedule as one compiled loop nest each (:mod:`.fuse`).

    Below ``numpy_below`` elements (``FUSION_NUMBA_NUMPY_BELOW``, default 4096) a primitive is
    one numpy call instead: a numba kernel is no faster there, and the wrapper that lays out
    its operands costs several times numpy's dispatch. Only exactly rounded primitives do so
    (arithmetic, sqrt, comparisons, where, casts, maximum, sums and maxima), so the results
    are the kernels' to the bit (integer wrap-around, ``x // 0 == 0``, NaN in maximum, bool
    sums as "any", sums accumulated in float64 or int64) and a plain step agrees with the
    fused kernels of a jitted one. exp, log, sin and pow (whose last bits differ between
    numpy's and the kernels' implementations) and 0-d arrays (which numpy's ufuncs give back
    as scalars) always take the kernels.
    """

    capabilities = frozenset({"float64", "int64", "views", "fuse", "assign"})
    #: The methods that take ``out=`` (see ``fusion.core.backend``): fused kernels and matmul.
    writes_into = frozenset({"fuse", "contract"})
    #: Fused kernels may hold reductions over the last axis (see ``fusion.core.kernel``).
    row_reductions = True

    def __init__(self) -> None:
        import numba

        self.version = numba.__version__
        compiling.install()
        self._k = config.load_kernels()
        self._serial = {name: getattr(self._k, name) for name in _ELEMENTWISE}
        self._par = {name: getattr(self._k, f"{name}_par") for name in _ELEMENTWISE}
        self._numba = numba
        self.parallel_min = config.parallel_min()
        self.fuse_min = config.fuse_min()
        self.numpy_below = config.numpy_below()
        from . import fuse

        self._fuse = fuse
        self._supported: dict = {}
        self.blas_threads = threads.blas_setting()
        self.pool = BufferPool.from_environment()
        threads.apply_policy()

    @property
    def compile_seconds(self) -> float:
        """Seconds spent compiling kernels in this process (fit leaves them out of epochs)."""
        return compiling.compile_seconds()

    # --- choosing a kernel ---------------------------------------------------------------
    def _parallel(self, work: int) -> bool:
        return work >= self.parallel_min and self._numba.get_num_threads() > 1

    def _threads(self) -> int:
        return self._numba.get_num_threads()

    # --- elementwise ---------------------------------------------------------------------
    def _map(self, name: str, out_dtype, *operands: np.ndarray) -> np.ndarray:
        """Run elementwise kernel ``name`` over operands of one shape; result ``out_dtype``."""
        first = operands[0]
        n = first.size
        flat = []
        layout = None
        for a in operands:  # the common cases, kept cheap (flags only): see _map_strided
            flags = a.flags
            if flags.c_contiguous and layout != "F":
                flat.append(a.reshape(n))
                layout = "C"
            elif flags.f_contiguous and layout != "C":  # a transposed array: its memory order
                flat.append(a.T.reshape(n))
                layout = "F"
            elif n and not any(a.strides):  # one value expanded: the kernel takes 1 element
                flat.append(a.reshape(-1)[:1].copy())
            else:
                break
        else:
            if layout == "C":
                return self._run(name, flat, n, out_dtype).reshape(first.shape)
            if layout == "F":
                return self._run(name, flat, n, out_dtype).reshape(first.shape[::-1]).T
        if n == 0:
            return np.empty(first.shape, out_dtype)
        return self._map_strided(name, out_dtype, operands)

    def _map_strided(self, name: str, out_dtype, operands: tuple[np.ndarray, ...]) -> np.ndarray:
        """``_map`` for operands that are not all C-contiguous.

        Axes broadcast in every operand are computed once and expanded; operands laid out
        alike in another axis order (transposed views) run in their memory order and the
        result is transposed back; anything else is copied into C order.
        """
        shape = operands[0].shape
        operands, expanded = _shared_broadcast(operands)
        order = _common_order(operands)
        if order is not None:
            operands = tuple(a.transpose(order) for a in operands)
        n = operands[0].size
        out = self._run(name, [_flat(a, n) for a in operands], n, out_dtype)
        result = out.reshape(operands[0].shape)
        if order is not None:
            result = result.transpose(_inverse(order))
        return np.broadcast_to(result, shape) if expanded else result

    def _run(self, name: str, flat: list[np.ndarray], n: int, out_dtype) -> np.ndarray:
        """Call the serial or parallel kernel ``name`` on 1-D operands; a new 1-D result."""
        out = self.pool.empty(n, out_dtype)
        _read_only(flat)
        if n >= self.parallel_min and self._numba.get_num_threads() > 1:
            self._par[name](*flat, out, self._numba.get_num_threads())
        elif n:
            self._serial[name](*flat, out)
        return out

    # --- creation and transfer -------------------------------------------------------------
    def from_numpy(self, array):
        return np.asarray(array)

    def to_numpy(self, x):
        return x

    def full(self, shape, value, dtype: DType):
        out = np.empty(shape, dtype=dtype.np)
        out.fill(value)  # converts as np.full does, at half its cost on small arrays
        return out

    # --- unary ---------------------------------------------------------------------------
    # The exactly rounded primitives run as one numpy call below ``numpy_below`` elements (see
    # the class docstring); 0-d arrays take the kernels, as numpy's ufuncs give them back as
    # scalars. exp, log, sin and pow always take the kernels.
    def neg(self, x):
        _require_numeric("neg", x)
        if x.size < self.numpy_below and x.ndim:
            return np.negative(x)
        return self._map("neg", x.dtype, x)

    def exp(self, x):
        _require_float("exp", x)
        return self._map("exp", x.dtype, x)

    def log(self, x):
        _require_float("log", x)
        return self._map("log", x.dtype, x)

    def sqrt(self, x):
        _require_float("sqrt", x)
        if x.size < self.numpy_below and x.ndim:
            return np.sqrt(x)
        return self._map("sqrt", x.dtype, x)

    def recip(self, x):
        _require_float("recip", x)
        if x.size < self.numpy_below and x.ndim:
            return np.reciprocal(x)
        return self._map("recip", x.dtype, x)

    def sin(self, x):
        _require_float("sin", x)
        return self._map("sin", x.dtype, x)

    def cast(self, x, dtype: DType):
        if x.dtype == dtype.np:
            return x
        if x.size < self.numpy_below and x.ndim:
            return x.astype(dtype.np)
        return self._map("cast", dtype.np, x)

    # --- binary --------------------------------------------------------------------------
    def add(self, x, y):
        if x.size < self.numpy_below and x.ndim:
            return np.add(x, y)
        return self._map("add", x.dtype, x, y)

    def sub(self, x, y):
        _require_numeric("sub", x)
        if x.size < self.numpy_below and x.ndim:
            return np.subtract(x, y)
        return self._map("sub", x.dtype, x, y)

    def mul(self, x, y):
        if x.size < self.numpy_below and x.ndim:
            return np.multiply(x, y)
        return self._map("mul", x.dtype, x, y)

    def div(self, x, y):
        _require_numeric("div", x)
        if x.size < self.numpy_below and x.ndim:
            # true division of floats; integers floor, with x // 0 == 0 (numpy's answer too)
            return np.true_divide(x, y) if x.dtype.kind == "f" else np.floor_divide(x, y)
        return self._map("div", x.dtype, x, y)

    def pow(self, x, y):
        if x.dtype.kind in _INT_KINDS and y.size and (np.min(y) < 0):
            raise ValueError("Integers to negative integer powers are not allowed.")
        return self._map("pow", x.dtype, x, y)

    def maximum(self, x, y):
        if x.size < self.numpy_below and x.ndim:
            return np.maximum(x, y)
        return self._map("maximum", x.dtype, x, y)

    def cmpeq(self, x, y):
        if x.size < self.numpy_below and x.ndim:
            return np.equal(x, y)
        return self._map("cmpeq", np.bool_, x, y)

    def cmplt(self, x, y):
        if x.size < self.numpy_below and x.ndim:
            return np.less(x, y)
        return self._map("cmplt", np.bool_, x, y)

    # --- ternary -------------------------------------------------------------------------
    def where(self, cond, x, y):
        if x.size < self.numpy_below and x.ndim:
            return np.where(cond, x, y)
        if cond.size and (_is_scalar_broadcast(cond) or cond.size == 1):
            # a broadcast condition picks one side, copied: a result is never an input itself
            return np.array(x if cond.reshape(-1)[0] else y, order="C")
        return self._map("where", x.dtype, cond, x, y)

    # --- reduce --------------------------------------------------------------------------
    def reduce_sum(self, x, axes):
        if 0 < x.size < self.numpy_below and x.ndim:
            # accumulated as the kernels do: float64 for floats, int64 for ints and bools
            acc = np.float64 if x.dtype.kind == "f" else np.int64
            total = np.add.reduce(x, axis=tuple(axes), dtype=acc, keepdims=True)
            return total.astype(x.dtype, copy=False)
        return self._reduce("sum", x, tuple(axes))

    def reduce_max(self, x, axes):
        if 0 < x.size < self.numpy_below and x.ndim:
            return np.maximum.reduce(x, axis=tuple(axes), keepdims=True)
        return self._reduce("max", x, tuple(axes))

    def _reduce(self, op: str, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        out_shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        if math.prod(x.shape[i] for i in axes) == 0:
            if op == "max":
                raise ValueError(
                    "zero-size array to reduction operation maximum which has no identity"
                )
            return np.zeros(out_shape, x.dtype)
        if x.size == 0:
            return np.empty(out_shape, x.dtype)
        if not axes:
            return x
        lo, hi = axes[0], axes[-1] + 1
        if hi - lo == len(axes) and x.flags.c_contiguous:
            # The common case, kept cheap: one run of adjacent axes of a contiguous array.
            shape = x.shape
            x3 = x.reshape(math.prod(shape[:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:]))
            result = self._reduce_axis1(op, x3).reshape(out_shape)
            return result if result.dtype == x.dtype else result.astype(x.dtype)
        order = _contiguous_order(x)
        if order is None:
            return self._reduce_contiguous(op, np.ascontiguousarray(x), axes)
        # A permuted contiguous array (a transposed view): reduce the underlying layout and
        # permute the result back, instead of copying.
        base_axes = tuple(sorted(order.index(a) for a in axes))
        result = self._reduce_contiguous(op, x.transpose(order), base_axes)
        return result.transpose(_inverse(order))

    def _reduce_contiguous(self, op: str, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """Reduce a C-contiguous ``x``: one (A, R, B) pass per run of adjacent reduced axes."""
        out_shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        # Runs of adjacent reduced / kept axes, size-1 axes dropped: [[size, reduced], ...].
        runs: list[list] = []
        for i, n in enumerate(x.shape):
            if n == 1:
                continue
            if runs and runs[-1][1] == (i in axes):
                runs[-1][0] *= n
            else:
                runs.append([n, i in axes])
        work = x.reshape(-1)
        while any(reduced for _, reduced in runs):
            j = max(i for i, (_, reduced) in enumerate(runs) if reduced)
            a = math.prod(n for n, _ in runs[:j])
            b = math.prod(n for n, _ in runs[j + 1 :])
            work = self._reduce_axis1(op, work.reshape(a, runs[j][0], b))
            runs = runs[:j] + runs[j + 1 :]
            if 0 < j < len(runs):  # the kept runs on either side are now adjacent
                runs[j - 1 : j + 1] = [[runs[j - 1][0] * runs[j][0], False]]
        result = work.reshape(out_shape)
        if result.dtype != x.dtype:
            result = result.astype(x.dtype)  # float64 -> float32, int64 -> int32 or bool
        return result

    def _reduce_axis1(self, op: str, x3: np.ndarray) -> np.ndarray:
        """Reduce axis 1 of a C-contiguous (A, R, B) array to an (A, B) array.

        Sums come back in the accumulator dtype (float64 or int64), maxima in x3's dtype.
        """
        a, r, b = x3.shape
        _read_only((x3,))
        if op == "sum":
            acc = np.float64 if x3.dtype.kind == "f" else np.int64
            new = np.zeros
        else:
            acc = x3.dtype
            new = np.empty
        parallel = self._parallel(x3.size)
        nt = self._threads() if parallel else 1
        k = self._k
        if b == 1:
            x2 = x3.reshape(a, r)
            if not parallel:
                out = new(a, acc)
                (k.sum_rows if op == "sum" else k.max_rows)(x2, out)
            elif a >= nt:
                out = new(a, acc)
                (k.sum_rows_par if op == "sum" else k.max_rows_par)(x2, out)
            else:  # few long rows: each thread reduces a span of every row, then merge
                partial = new((a, _nonempty_parts(r, nt)), acc)
                (k.sum_rows_split if op == "sum" else k.max_rows_split)(x2, partial)
                out = partial.sum(axis=1) if op == "sum" else partial.max(axis=1)
            return out.reshape(a, 1)
        if not parallel:
            out = new((a, b), acc)
            (k.sum_cols if op == "sum" else k.max_cols)(x3, out)
        elif a >= nt:
            out = new((a, b), acc)
            (k.sum_cols_par if op == "sum" else k.max_cols_par)(x3, out)
        elif a * b * nt <= (1 << 20) and r >= 64 * nt:  # merge cost is small: split the rows
            partial = new((_nonempty_parts(r, nt), a, b), acc)
            (k.sum_cols_split_r if op == "sum" else k.max_cols_split_r)(x3, partial)
            out = partial.sum(axis=0) if op == "sum" else partial.max(axis=0)
        else:
            out = new((a, b), acc)
            (k.sum_cols_split_b if op == "sum" else k.max_cols_split_b)(x3, out, nt)
        return out

    # --- movement: numpy views, as in the numpy backend ----------------------------------
    def reshape(self, x, shape):
        return x.reshape(shape)

    def expand(self, x, shape):
        return np.broadcast_to(x, shape)

    def permute(self, x, order):
        return x.transpose(order)

    def pad(self, x, widths, value):
        shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths, strict=True))
        out = np.empty(shape, x.dtype)
        out[...] = value  # assignment converts ``value`` exactly as np.pad does
        out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, widths, strict=True))] = x
        return out

    def shrink(self, x, bounds):
        return x[tuple(slice(start, stop) for start, stop in bounds)]

    def flip(self, x, axes):
        return np.flip(x, axes)

    # --- fused kernels -------------------------------------------------------------------
    def fusable(self, kernel, shape) -> bool:
        """Kernels of at least ``fuse_min`` elements are compiled whole (see
        :func:`.fuse.supported`); below it the primitives one by one cost less than a
        compilation."""
        return math.prod(shape) >= self.fuse_min and self._compiles(kernel)

    def _compiles(self, kernel) -> bool:
        """:func:`.fuse.supported`, remembered per kernel (asked at every launch)."""
        found = self._supported.get(kernel)
        if found is None:
            found = self._supported[kernel] = self._fuse.supported(kernel)
        return found

    def fuse(self, kernel, inputs, views, constants, shape, out=None):
        """Run ``kernel`` as one loop nest (see :mod:`.fuse`), into ``out`` if given. A kernel
        it does not compile (see :func:`.fuse.supported`) runs through the reference
        evaluator, which Fusion itself never asks for: it checks :meth:`fusable` first."""
        if not self._compiles(kernel):
            from fusion.core.kernel import evaluate

            result = evaluate(kernel, inputs, views, constants, shape)
        else:
            parallel = self._parallel(math.prod(shape))
            result = self._fuse.run(kernel, inputs, views, constants, shape, parallel,
                                    self._threads() if parallel else 1, empty=self.pool.empty)
        if out is None:
            return result
        np.copyto(out, result)
        return out

    def fuse_launcher(self, kernel, inputs, views, constants, shape, out):
        """A function of no arguments running :meth:`fuse` into ``out`` with its compiled
        loop's arguments prepared once, or None (see :func:`.fuse.launcher`): how
        :func:`fusion.jit` replays a fused kernel."""
        parallel = self._parallel(math.prod(shape))
        return self._fuse.launcher(kernel, inputs, views, constants, shape, parallel,
                                   self._threads() if parallel else 1, out)

    # --- contraction ---------------------------------------------------------------------
    def contract(self, x, y, out=None):
        """Batched matmul through numpy's ``matmul``, i.e. BLAS (OpenBLAS) for float dtypes.

        BLAS is faster than any loop numba compiles; see :mod:`.threads` for how its threads
        and numba's share the cores.
        """
        if out is None and x.dtype == y.dtype and x.dtype.itemsize * x.shape[-2] * y.shape[-1] \
                >= self.pool.min_bytes:  # a large result in reused memory (see .pool)
            shape = (*np.broadcast_shapes(x.shape[:-2], y.shape[:-2]), x.shape[-2], y.shape[-1])
            out = self.pool.empty(math.prod(shape), x.dtype).reshape(shape)
        count = threads.blas_threads_for(x.shape[-2] * x.shape[-1] * y.shape[-1], self.blas_threads)
        if count is None:
            return np.matmul(x, y, out=out)
        with threads.blas_limit(count):
            return np.matmul(x, y, out=out)

    def assign(self, dst, src):
        """Write ``src`` into ``dst`` in place (numpy arrays both)."""
        np.copyto(dst, src)
