"""Tensor: the user API.

Every method here is either one differentiable primitive (a Function of
:mod:`fusion.core.autograd`) or a composition of other methods, so every backend runs it and
differentiates it. Broadcasting and dtype promotion happen here, before a primitive is called.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Iterable, Sequence

import numpy as np

from . import autograd as F
from . import capture as _capture
from . import random as _rng
from .backend import Backend, get_backend
from .buffer import Buffer
from .buffer import persist as _persist_buffers
from .buffer import realize as realize_buffers
from .dtypes import (
    DTYPES,
    DType,
    bool_,
    check_fits,
    default_float,
    default_int,
    from_numpy_dtype,
    int64,
    promote,
    scalar_dtype,
    to_dtype,
)
from .grad_mode import _grad_enabled
from .ops import ContractOp

_SCALARS = (bool, int, float, np.bool_, np.integer, np.floating)
#: numpy dtypes that are exactly a Fusion dtype (what from_numpy can share without converting)
_NATIVE_DTYPES = {d.np: d for d in DTYPES}


def _apply(fn: type[F.Function], *tensors: Tensor, **kwargs) -> Tensor:
    """Run Function ``fn`` forward on the tensors' buffers and record it in the graph."""
    needs = tuple([t.requires_grad for t in tensors])
    ctx = fn(needs)
    out = _new(Tensor)
    out.data = ctx.forward(*[t.data for t in tensors], **kwargs)
    out.grad = None
    out._op = fn.__name__
    if fn.differentiable and True in needs and _grad_enabled.get():
        ctx.parents = tensors
        out.requires_grad = True
        out._ctx = ctx
    else:
        out.requires_grad = False
        out._ctx = None
    return out


_new = object.__new__
#: sys.getrefcount of a buffer held by one tensor alone, measured as _owns_storage measures it
_SOLE_REFS = 3
#: sys.getrefcount of a buffer held by one local variable alone (the call adds one).
_UNSHARED_REFS = 2


def _owns_storage(t: Tensor) -> bool:
    """Whether ``t``'s buffer is held by ``t`` alone and its storage can be written in place
    (see :meth:`Tensor.assign`). CPython's reference count says who else holds the buffer:
    another tensor (``detach()``, a state dict), pending lazy work, a graph kept for
    backward."""
    return _held_alone(t) and t.data.writable()


def _held_alone(t: Tensor) -> bool:
    """Whether nothing but ``t`` holds its buffer (see :func:`_owns_storage`)."""
    buffer = t.data
    return sys.getrefcount(buffer) == _SOLE_REFS


def _constant(buffer: Buffer) -> Tensor:
    """A Python number made a tensor inside an op; its op name tells graph drawings to hide it."""
    out = _wrap(buffer)
    out._op = "constant"
    return out


class _FreedBuffer:
    """What a tensor that backward() dropped from a graph keeps: shape, dtype and backend."""

    __slots__ = ("backend", "shape", "dtype")

    def __init__(self, buffer: Buffer):
        self.backend, self.shape, self.dtype = buffer.backend, buffer.shape, buffer.dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def numpy(self):
        raise RuntimeError("the values of this tensor were freed by backward(); pass "
                           "retain_graph=True to backward() to keep them")


def _stand_in(t: Tensor, done: dict[int, Tensor]) -> Tensor:
    """What a graph keeps of ``t`` after backward: a leaf that requires grad stays itself (an
    optimizer holds it anyway); anything else becomes a stand-in with the op, shape and dtype
    but no values, made once (``done``)."""
    if t.requires_grad and t._ctx is None:
        return t
    out = done.get(id(t))
    if out is not None:
        return out
    out = done[id(t)] = _new(Tensor)
    out.data = _FreedBuffer(t.data)
    out.grad = None
    out.requires_grad = t.requires_grad
    out._ctx = t._ctx
    out._op = t._op
    return out


def _wrap(buffer: Buffer, requires_grad: bool = False) -> Tensor:
    out = _new(Tensor)
    out.data = buffer
    out.grad = None
    out.requires_grad = requires_grad
    out._ctx = None
    out._op = None
    return out


def _to_numpy_array(data, dtype: DType | None) -> tuple[np.ndarray, DType]:
    """Turn user data (number, nested list, numpy array) into a new array of a Fusion dtype.

    The result never shares memory with ``data``, so a later write to the caller's array
    cannot reach a tensor.
    """
    # numpy builds a new array from Python numbers and lists; anything else may be shared
    fresh = isinstance(data, list | tuple | bool | int | float)
    if isinstance(data, np.ndarray | np.generic):
        array = np.asarray(data)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"cannot make a tensor from a numpy array of dtype {array.dtype}")
        inferred = from_numpy_dtype(array.dtype)
    else:
        if isinstance(data, float) or (
                isinstance(data, list | tuple) and _any_float(data)):
            inferred = default_float
        elif isinstance(data, bool):
            inferred = bool_
        else:
            inferred = None
        try:
            array = np.asarray(data)
        except ValueError as exc:
            raise ValueError(f"cannot make a tensor from ragged data: {exc}") from None
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"cannot make a tensor from {type(data).__name__} "
                f"(numpy sees dtype {array.dtype}); expected numbers")
        if inferred is None:
            inferred = (bool_ if array.dtype.kind == "b" else
                        default_int if array.dtype.kind in "iu" else default_float)
    dtype = inferred if dtype is None else to_dtype(dtype)
    if array.dtype != dtype.np:
        array = array.astype(dtype.np)  # a new array
    elif not fresh:
        array = array.copy()
    return array, dtype


def _any_float(seq) -> bool:
    for item in seq:
        if isinstance(item, float) or (isinstance(item, list | tuple) and _any_float(item)):
            return True
    return False


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape numpy's broadcasting rules give ``shapes``, or a ValueError naming them."""
    ndim = max(len(s) for s in shapes)
    out = []
    for sizes in zip(*[(1,) * (ndim - len(s)) + tuple(s) for s in shapes], strict=False):
        size = max(sizes)
        if any(n != size and n != 1 for n in sizes):
            size = 0 if 0 in sizes and all(n in (0, 1) for n in sizes) else -1
        if size < 0:
            raise ValueError("cannot broadcast " + " with ".join(str(tuple(s)) for s in shapes))
        out.append(size)
    return tuple(out)


def _shape_arg(shape) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(shape) == 1 and isinstance(shape[0], Sequence):
        shape = shape[0]
    return tuple(int(n) for n in shape)


class Tensor:
    """An n-dimensional array on a backend, with reverse-mode automatic differentiation.

    ``Tensor(data)`` copies ``data`` (a number, a nested list, a numpy array or another
    tensor), as ``torch.tensor`` does: a later write to the caller's array does not change the
    tensor. :func:`fusion.from_numpy` shares the array's memory instead. A tensor's own memory
    is never handed out: :meth:`numpy` returns a copy.

    >>> x = fusion.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_op", "__weakref__")
    __hash__ = object.__hash__  # == is elementwise, so identity is the hash
    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators

    def __init__(self, data, dtype=None, requires_grad: bool = False,
                 backend: str | Backend | None = None):
        if isinstance(data, Tensor):
            data = data.data.numpy()  # shared, and copied just below
        array, dtype = _to_numpy_array(data, dtype)
        self.data = Buffer.from_numpy(get_backend(backend), array, dtype)
        self.grad: Tensor | None = None
        self._ctx: F.Function | None = None
        self._op: str | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # --- properties ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    @property
    def dtype(self) -> DType:
        return self.data.dtype

    @property
    def backend(self) -> str:
        """The name of the backend holding this tensor's data."""
        return self.data.backend.name

    def numel(self) -> int:
        return self.data.numel

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not self.dtype.is_float:
            raise TypeError(f"only float tensors can require gradients, not {self.dtype.name}")
        self.requires_grad = requires_grad
        return self

    # --- conversion ----------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a new, writable numpy array (C order) of the tensor's dtype.

        Unlike PyTorch's ``Tensor.numpy()``, this is a copy: writing to it changes neither
        the tensor nor anything computed from it (backends share memory between tensors, and a
        write there would reach gradients and other results). To share memory with numpy in
        the other direction, make the tensor with :func:`fusion.from_numpy`.

        >>> a = fusion.Tensor([1.0, 2.0]).numpy()
        >>> a[0] = 5.0  # the tensor still holds [1.0, 2.0]
        """
        return self.data.numpy().copy()

    def __array__(self, dtype=None, copy=None):
        """numpy's conversion protocol: ``np.array(t)`` and ``np.asarray(t)`` give a copy.

        A tensor's memory is never shared with numpy, so ``copy=False`` (which forbids a copy)
        raises ValueError, as numpy's own rule for that argument asks.
        """
        if copy is False:
            raise ValueError("a Tensor cannot be converted to a numpy array without a copy "
                             "(its memory is never shared); use copy=None or copy=True")
        array = self.numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor of one element, not shape {self.shape}")
        return self.data.numpy().reshape(()).item()

    def tolist(self):
        return self.data.numpy().tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             "use .any() or .all()")
        return bool(self.item())

    def to(self, backend: str | Backend) -> Tensor:
        """This tensor's values on another backend (a new leaf tensor)."""
        target = get_backend(backend)
        if target is self.data.backend:
            return self
        moved = Buffer.from_numpy(target, np.asarray(self.numpy(), order="C"), self.dtype)
        return _wrap(moved, self.requires_grad)

    def detach(self) -> Tensor:
        """The same values, cut from the graph."""
        return _wrap(self.data)

    def realize(self) -> Tensor:
        """Compute this tensor's values now (on a lazy backend; see :func:`fusion.realize`)
        and return it. Reading the values (``numpy()``, ``item()``, printing) does this too.
        """
        self.data.realize()
        return self

    def assign(self, value: Tensor) -> Tensor:
        """Give this tensor ``value``'s values (same shape, dtype and backend), recording
        nothing in a graph. Optimizers, batch-norm statistics and weight initialisation update
        state this way.

        The values are written into this tensor's own storage when nothing else refers to it
        (no other tensor, pending lazy work or saved graph holds its buffer), so that the
        storage stays the same from step to step (what :func:`fusion.jit` replays on).
        Otherwise the tensor gets new storage, and whatever shared the old keeps its values:
        a state dict taken earlier never changes. A numpy view of the storage (a transpose
        kept from before) does see the new values, as it does in numpy."""
        if not isinstance(value, Tensor):
            raise TypeError(f"assign takes a Tensor, not {type(value).__name__}")
        if value.shape != self.shape or value.dtype is not self.dtype:
            raise ValueError(f"assign of a {value.dtype.name} tensor of shape {value.shape} "
                             f"to a {self.dtype.name} tensor of shape {self.shape}")
        if value.data.backend is not self.data.backend:
            raise ValueError(f"assign across backends ({value.backend!r} to {self.backend!r}); "
                             f"move the value with .to({self.backend!r}) first")
        if _owns_storage(self):
            self.data.assign(value.data)
            _capture.note_assign(self)
        elif value.data is not self.data:
            self.data = value.data
            _capture.state_changed()
        return self

    def cast(self, dtype) -> Tensor:
        dtype = to_dtype(dtype)
        if dtype is self.dtype:
            return self
        if self.requires_grad and not dtype.is_float:
            return _wrap(self.data.cast(dtype))  # integers carry no gradient
        return _apply(F.Cast, self, dtype=dtype)

    astype = cast

    def float(self) -> Tensor:
        return self.cast(default_float)

    def __repr__(self) -> str:
        values = np.array2string(self.data.numpy(), separator=", ", prefix="Tensor(")
        extra = f", op={self._op}" if self._op else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return (f"Tensor({values}, shape={self.shape}, dtype={self.dtype.name}, "
                f"backend={self.backend}{grad}{extra})")

    # --- autograd ------------------------------------------------------------------------
    def _topological_order(self) -> list[Tensor]:
        """Every tensor of the graph that needs a gradient, parents before children."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            if node._ctx is not None:
                for parent in node._ctx.parents:
                    if parent.requires_grad and id(parent) not in visited:
                        stack.append((parent, False))
        return order

    def backward(self, gradient: Tensor | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` (d(output)/d(self), of self's shape) may be left out when self has one
        element. Every leaf's gradient is a new tensor of its own, never ``gradient`` itself
        nor another leaf's.

        Afterwards the graph keeps its structure (its ops, shapes and dtypes, for drawing) but
        lets go of the values its ops saved and of the intermediate tensors it held, so that a
        loss kept after backward costs little memory; a second backward through it raises
        RuntimeError. ``retain_graph=True`` keeps everything, so that backward can run again
        (gradients then add up).

        >>> x = fusion.Tensor([1.0, 2.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.backward(retain_graph=True)
        >>> y.backward()
        >>> x.grad.tolist()
        [4.0, 8.0]
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input of its graph has requires_grad=True)")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a single-element tensor, "
                    f"not shape {self.shape}; reduce it first (e.g. .sum()) or pass gradient=")
            seed = Buffer.full(self.data.backend, self.shape, 1, self.dtype)
        else:
            gradient = self._operand(gradient)
            if gradient.shape != self.shape:
                raise ValueError(f"gradient of shape {gradient.shape} for a tensor of shape "
                                 f"{self.shape}")
            seed = gradient.data.cast(self.dtype)
        order = self._topological_order()
        for node in order:
            if node._ctx is not None and node._ctx.released:
                raise RuntimeError(
                    "backward() through a graph that an earlier backward() already freed "
                    f"(at a {node._ctx.op} op); call the first backward(retain_graph=True) "
                    "to run backward through the same graph again")
        grads: dict[int, Buffer] = {id(self): seed}
        freed: dict[int, Tensor] = {}
        leaves: list[Buffer] = []
        grad_leaves: list[Tensor] = []
        for node in reversed(order):
            grad = grads.pop(id(node), None)
            ctx = node._ctx
            if ctx is None:
                if grad is not None:
                    # a copy: the incoming gradient may be ``gradient`` itself, or go to
                    # another leaf too (x + w hands both the same one), or be a view of
                    # memory another gradient holds. A product's result that nothing else
                    # holds (a Linear weight's gradient) is new memory of its own already.
                    if node.grad is not None:
                        grad = node.grad.data.add(grad)
                    elif grad.op is not ContractOp.CONTRACT or \
                            sys.getrefcount(grad) != _UNSHARED_REFS:
                        grad = grad.copy()
                    node.grad = _wrap(grad)
                    leaves.append(node.grad.data)
                    grad_leaves.append(node)
                continue
            if grad is not None:
                parent_grads = ctx.backward(grad)
                if not isinstance(parent_grads, tuple):
                    parent_grads = (parent_grads,)
                for parent, pgrad, needed in zip(ctx.parents, parent_grads,
                                                 ctx.needs_input_grad, strict=False):
                    if pgrad is None or not needed:
                        continue
                    key = id(parent)
                    grads[key] = pgrad if key not in grads else grads[key].add(pgrad)
                parent_grads = pgrad = None  # the gradients are held by ``grads`` alone
            if not retain_graph:
                ctx.release()
                ctx.parents = tuple([_stand_in(parent, freed) for parent in ctx.parents])
        if any(b._data is None for b in leaves):
            realize_buffers(leaves)  # the gradients are computed here, together
        _capture.note_grads(grad_leaves)

    def zero_grad(self) -> None:
        self.grad = None

    # --- operands: conversion, promotion, broadcasting -----------------------------------
    def _operand(self, value, dtype: DType | None = None) -> Tensor:
        """``value`` as a tensor on this tensor's backend (scalars take this dtype)."""
        if isinstance(value, Tensor):
            if value.data.backend is not self.data.backend:
                raise ValueError(
                    f"tensors on two backends, {self.backend!r} and {value.backend!r}, do not "
                    f"mix; move one with .to({self.backend!r})")
            return value
        if isinstance(value, _SCALARS) and not isinstance(value, np.ndarray):
            dtype = dtype or scalar_dtype(_py(value), self.dtype)
            return _constant(Buffer.full(self.data.backend, (), _py(value), dtype))
        return Tensor(value, backend=self.data.backend)

    def _broadcasted(self, other, reverse: bool = False,
                     arithmetic: bool = False) -> tuple[Tensor, Tensor]:
        """Both operands with one dtype and one shape; ``arithmetic`` turns bools into int64."""
        if type(other) is Tensor:  # the common case first: nothing to do
            a, b = self.data, other.data
            if (a.dtype is b.dtype and a.shape == b.shape and a.backend is b.backend
                    and not (arithmetic and a.dtype is bool_)):
                return (other, self) if reverse else (self, other)
        if type(other) is Tensor or not isinstance(other, _SCALARS):
            y = self._operand(other)
            dtype = self.dtype if y.dtype is self.dtype else promote(self.dtype, y.dtype)
        else:
            other = _py(other)
            dtype = scalar_dtype(other, self.dtype)
            y = None
        if arithmetic and dtype is bool_:
            dtype = default_int
        x = self if self.dtype is dtype else self.cast(dtype)
        if y is None:
            y = _constant(Buffer.constant(x.data.backend, x.shape, other, dtype))
        else:
            if y.dtype is not dtype:
                y = y.cast(dtype)
            if x.shape != y.shape:
                shape = broadcast_shape(x.shape, y.shape)
                x, y = _broadcast_to(x, shape), _broadcast_to(y, shape)
        return (y, x) if reverse else (x, y)

    # --- arithmetic ----------------------------------------------------------------------
    def add(self, other, reverse: bool = False) -> Tensor:
        return _apply(F.Add, *self._broadcasted(other, reverse, arithmetic=True))

    def sub(self, other, reverse: bool = False) -> Tensor:
        return _apply(F.Sub, *self._broadcasted(other, reverse, arithmetic=True))

    def mul(self, other, reverse: bool = False) -> Tensor:
        return _apply(F.Mul, *self._broadcasted(other, reverse, arithmetic=True))

    def div(self, other, reverse: bool = False) -> Tensor:
        """True division: integer operands give float32."""
        x, y = self._broadcasted(other, reverse, arithmetic=True)
        if not x.dtype.is_float:
            x, y = x.cast(default_float), y.cast(default_float)
        return _apply(F.Div, x, y)

    def floordiv(self, other, reverse: bool = False) -> Tensor:
        """Floor division (Python's ``//``); ``x // 0`` is 0 for integers."""
        x, y = self._broadcasted(other, reverse, arithmetic=True)
        if x.dtype.is_float:
            return (x / y).floor()
        return _apply(F.Div, x, y)

    def pow(self, other, reverse: bool = False) -> Tensor:
        """``self ** other``; an integer tensor to a Python float power is float32."""
        if (not reverse and isinstance(other, int | float) and other == 2
                and (isinstance(other, int) or self.dtype.is_float)):
            return self * self
        return _apply(F.Pow, *self._broadcasted(other, reverse, arithmetic=True))

    def neg(self) -> Tensor:
        if self.dtype is bool_:
            raise TypeError("negation of a bool tensor; use logical_not()")
        return _apply(F.Neg, self)

    def maximum(self, other) -> Tensor:
        return _apply(F.Maximum, *self._broadcasted(other))

    def minimum(self, other) -> Tensor:
        x, y = self._broadcasted(other)
        if x.dtype is bool_:
            return x.logical_and(y)
        return _order_reversed(_order_reversed(x).maximum(_order_reversed(y)))

    __add__ = add
    __sub__ = sub
    __mul__ = mul
    __truediv__ = div
    __floordiv__ = floordiv
    __pow__ = pow
    __neg__ = neg

    def __radd__(self, other):
        return self.add(other, reverse=True)

    def __rsub__(self, other):
        return self.sub(other, reverse=True)

    def __rmul__(self, other):
        return self.mul(other, reverse=True)

    def __rtruediv__(self, other):
        return self.div(other, reverse=True)

    def __rfloordiv__(self, other):
        return self.floordiv(other, reverse=True)

    def __rpow__(self, other):
        return self.pow(other, reverse=True)

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return self._operand(other).matmul(self)

    # --- comparisons (bool results, no gradient) -----------------------------------------
    def __eq__(self, other) -> Tensor:  # type: ignore[override]
        beyond = _compared_beyond_range(self, other, operator.eq)
        return _apply(F.Equal, *self._broadcasted(other)) if beyond is None else beyond

    def __lt__(self, other) -> Tensor:
        beyond = _compared_beyond_range(self, other, operator.lt)
        return _apply(F.Less, *self._broadcasted(other)) if beyond is None else beyond

    def __gt__(self, other) -> Tensor:
        beyond = _compared_beyond_range(self, other, operator.gt)
        if beyond is not None:
            return beyond
        return _apply(F.Less, *self._broadcasted(other, reverse=True))

    def __ne__(self, other) -> Tensor:  # type: ignore[override]
        return (self == other).logical_not()

    def __le__(self, other) -> Tensor:
        beyond = _compared_beyond_range(self, other, operator.le)
        return _less_equal(*self._broadcasted(other)) if beyond is None else beyond

    def __ge__(self, other) -> Tensor:
        beyond = _compared_beyond_range(self, other, operator.ge)
        if beyond is not None:
            return beyond
        return _less_equal(*self._broadcasted(other, reverse=True))

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def logical_not(self) -> Tensor:
        return _apply(F.Equal, *self.cast(bool_)._broadcasted(False))

    def logical_and(self, other) -> Tensor:
        x, y = self.cast(bool_)._broadcasted(other)
        return x.cast(bool_).where(y.cast(bool_), False)

    def logical_or(self, other) -> Tensor:
        x, y = self.cast(bool_)._broadcasted(other)
        return _apply(F.Maximum, x.cast(bool_), y.cast(bool_))

    __invert__ = logical_not
    __and__ = logical_and
    __or__ = logical_or

    def where(self, x, y) -> Tensor:
        """Elementwise ``x if self else y`` (``self`` is the condition).

        ``x`` and ``y`` promote as the operands of any binary op, a Python scalar weakly:
        ``where(c, 0.5, int_tensor)`` is float32, ``where(c, 1, int32_tensor)`` int32.
        """
        cond = self.cast(bool_)
        if isinstance(x, Tensor):
            x, y = x._broadcasted(y)
        elif isinstance(y, Tensor):
            x, y = y._broadcasted(x, reverse=True)
        else:  # x is a scalar or a list: a tensor of its own dtype, which y meets
            x, y = cond._operand(x)._broadcasted(y)
        shape = broadcast_shape(cond.shape, x.shape)
        return _apply(F.Where, _broadcast_to(cond, shape), _broadcast_to(x, shape),
                      _broadcast_to(y, shape))

    def clip(self, min=None, max=None) -> Tensor:
        out = self
        if min is not None:
            out = out.maximum(min)
        if max is not None:
            out = out.minimum(max)
        return out

    clamp = clip

    # --- elementwise ---------------------------------------------------------------------
    def _float(self) -> Tensor:
        return self if self.dtype.is_float else self.cast(default_float)

    def exp(self) -> Tensor:
        return _apply(F.Exp, self._float())

    def log(self) -> Tensor:
        return _apply(F.Log, self._float())

    def sqrt(self) -> Tensor:
        return _apply(F.Sqrt, self._float())

    def sin(self) -> Tensor:
        return _apply(F.Sin, self._float())

    def reciprocal(self) -> Tensor:
        return _apply(F.Recip, self._float())

    def relu(self) -> Tensor:
        return _apply(F.Relu, self)

    def log2(self) -> Tensor:
        return self.log() * (1 / math.log(2))

    def rsqrt(self) -> Tensor:
        return self.sqrt().reciprocal()

    def cos(self) -> Tensor:
        # cos(x) = sin(pi/2 - x)
        return (math.pi / 2 - self._float()).sin()

    def tanh(self) -> Tensor:
        # tanh(x) = 2 * sigmoid(2x) - 1
        return 2.0 * (2.0 * self._float()).sigmoid() - 1.0

    def sigmoid(self) -> Tensor:
        # 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: only e^-|x| is computed,
        # so nothing overflows (1 / (1 + e^-x) alone gives a nan gradient, 0 * inf, at -100)
        x = self._float()
        negative = x < 0
        e = negative.where(x, -x).exp()
        return negative.where(e, 1.0) / (e + 1.0)

    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
        """log(1 + e^(beta x)) / beta, never overflowing; x itself where beta x > threshold."""
        from . import activations

        return activations.softplus(self, beta, threshold)

    def gelu(self) -> Tensor:
        # the tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x = self._float()
        return 0.5 * x * (1.0 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        x = self._float()  # float negation never wraps, as the most negative integer's does
        return x.relu() - (-x).relu() * negative_slope

    def square(self) -> Tensor:
        return self * self

    def sign(self) -> Tensor:
        """-1, 0 or 1 (nan for nan), in this tensor's dtype; its gradient is zero."""
        from . import activations

        return activations.sign(self)

    def abs(self) -> Tensor:
        if self.dtype is bool_:
            return self
        return self * self.sign()

    __abs__ = abs

    def floor(self) -> Tensor:
        """Round down; the gradient is zero (as for every rounding op)."""
        from . import activations

        return activations.floor(self)

    def ceil(self) -> Tensor:
        """Round up; the gradient is zero."""
        from . import activations

        return activations.ceil(self)

    def trunc(self) -> Tensor:
        """Round toward zero; the gradient is zero."""
        from . import activations

        return activations.trunc(self)

    def round(self, decimals: int = 0) -> Tensor:
        """Round to nearest, ties to even; the gradient is zero."""
        from . import activations

        return activations.round_half_even(self, decimals)

    def tan(self) -> Tensor:
        from . import activations

        return activations.tan(self)

    def exp2(self) -> Tensor:
        from . import activations

        return activations.exp2(self)

    def elu(self, alpha: float = 1.0) -> Tensor:
        from . import activations

        return activations.elu(self, alpha)

    def celu(self, alpha: float = 1.0) -> Tensor:
        from . import activations

        return activations.celu(self, alpha)

    def selu(self) -> Tensor:
        from . import activations

        return activations.selu(self)

    def relu6(self) -> Tensor:
        from . import activations

        return activations.relu6(self)

    def hardtanh(self, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
        from . import activations

        return activations.hardtanh(self, min_val, max_val)

    def hardsigmoid(self) -> Tensor:
        from . import activations

        return activations.hardsigmoid(self)

    def hardswish(self) -> Tensor:
        from . import activations

        return activations.hardswish(self)

    def silu(self) -> Tensor:
        from . import activations

        return activations.silu(self)

    swish = silu

    def quick_gelu(self) -> Tensor:
        from . import activations

        return activations.quick_gelu(self)

    def mish(self) -> Tensor:
        from . import activations

        return activations.mish(self)

    def softsign(self) -> Tensor:
        from . import activations

        return activations.softsign(self)

    def logsigmoid(self) -> Tensor:
        from . import activations

        return activations.logsigmoid(self)

    def isnan(self) -> Tensor:
        return self != self

    def isinf(self) -> Tensor:
        return self.abs() == math.inf

    # --- reductions ----------------------------------------------------------------------
    def _axes(self, axis) -> tuple[int, ...]:
        if axis is None:
            return tuple(range(self.ndim))
        if isinstance(axis, int | np.integer):
            axes = (axis,)
        elif isinstance(axis, tuple | list):
            axes = axis
        else:
            raise TypeError(f"axis must be None, an int or a tuple of ints, "
                            f"not {type(axis).__name__}")
        return tuple(sorted({self._axis(a) for a in axes}))

    def _axis(self, axis: int, ndim: int | None = None) -> int:
        ndim = self.ndim if ndim is None else ndim
        if not isinstance(axis, int | np.integer):
            raise TypeError(f"axis must be an int, not {type(axis).__name__}")
        if not -max(ndim, 1) <= axis < max(ndim, 1):
            raise IndexError(f"axis {axis} is out of range for a tensor of {ndim} dimensions")
        return int(axis) % max(ndim, 1) if ndim else 0

    def _dropped(self, reduced: Tensor, axes: tuple[int, ...], keepdim: bool) -> Tensor:
        if keepdim:
            return reduced
        return reduced.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def sum(self, axis=None, keepdim: bool = False) -> Tensor:
        """Sum over ``axis`` (None: all axes); bool and int32 sums are int64."""
        x = self if self.dtype.is_float or self.dtype is int64 else self.cast(int64)
        axes = self._axes(axis) if self.ndim else ()
        if not axes:
            return x
        return self._dropped(_apply(F.Sum, x, axes=axes), axes, keepdim)

    def max(self, axis=None, keepdim: bool = False) -> Tensor:
        axes = self._axes(axis) if self.ndim else ()
        if not axes:
            return self
        if any(self.shape[a] == 0 for a in axes):
            raise ValueError(f"max of an empty axis (shape {self.shape}, axes {axes})")
        return self._dropped(_apply(F.Max, self, axes=axes), axes, keepdim)

    def min(self, axis=None, keepdim: bool = False) -> Tensor:
        if self.dtype is bool_:
            return self.logical_not().max(axis, keepdim).logical_not()
        return _order_reversed(_order_reversed(self).max(axis, keepdim))

    def any(self, axis=None, keepdim: bool = False) -> Tensor:
        """Whether some element along ``axis`` is nonzero (False over an empty axis)."""
        x = self.cast(bool_)
        empty = x._empty_reduction(axis, keepdim, False)
        return x.max(axis, keepdim) if empty is None else empty

    def all(self, axis=None, keepdim: bool = False) -> Tensor:
        """Whether every element along ``axis`` is nonzero (True over an empty axis)."""
        x = self.cast(bool_)
        empty = x._empty_reduction(axis, keepdim, True)
        return x.min(axis, keepdim) if empty is None else empty

    def _empty_reduction(self, axis, keepdim: bool, identity) -> Tensor | None:
        """The result of reducing over ``axis`` when some reduced axis has size 0: every
        element ``identity``; None when there is something to reduce."""
        axes = self._axes(axis) if self.ndim else ()
        if all(self.shape[a] for a in axes):
            return None
        shape = tuple(1 if i in axes else n for i, n in enumerate(self.shape)
                      if keepdim or i not in axes)
        return full(shape, identity, self.dtype, self.data.backend)

    def mean(self, axis=None, keepdim: bool = False) -> Tensor:
        x = self._float()
        count = math.prod(x.shape[a] for a in x._axes(axis)) if x.ndim else 1
        return x.sum(axis, keepdim) / count if count else x.sum(axis, keepdim) * math.nan

    def var(self, axis=None, keepdim: bool = False, correction: int = 1) -> Tensor:
        """Variance with ``correction`` subtracted from the count (1: the sample variance)."""
        x = self._float()
        count = math.prod(x.shape[a] for a in x._axes(axis)) if x.ndim else 1
        squares = (x - x.mean(axis, keepdim=True)).square().sum(axis, keepdim)
        return squares / max(count - correction, 0) if count > correction else squares * math.nan

    def std(self, axis=None, keepdim: bool = False, correction: int = 1) -> Tensor:
        return self.var(axis, keepdim, correction).sqrt()

    def prod(self, axis=None, keepdim: bool = False) -> Tensor:
        """Product over ``axis``, as a tree of multiplications (exact gradients with zeros);
        bool and int32 products are int64, as sums are."""
        axes = self._axes(axis) if self.ndim else ()
        x = self if self.dtype.is_float or self.dtype is int64 else self.cast(int64)
        if not axes:
            return x
        rest = [a for a in range(self.ndim) if a not in axes]
        x = x.permute(*rest, *axes).reshape(*[self.shape[a] for a in rest],
                                            math.prod(self.shape[a] for a in axes))
        while x.shape[-1] > 1:
            if x.shape[-1] % 2:
                x = x.pad([(0, 0)] * (x.ndim - 1) + [(0, 1)], value=1)
            pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
            x = pairs[..., 0] * pairs[..., 1]
        if x.shape[-1] == 0:
            x = x.pad([(0, 0)] * (x.ndim - 1) + [(0, 1)], value=1)
        x = x.reshape(*x.shape[:-1])
        if keepdim:
            x = x.reshape(*[1 if i in axes else n for i, n in enumerate(self.shape)])
        return x

    def _arg_extreme(self, axis, keepdim: bool, largest: bool) -> Tensor:
        x = self.detach()
        flattened = axis is None
        if flattened:
            x, axis = x.flatten(), 0
        axis = x._axis(axis)
        if x.ndim == 0:  # a 0-d tensor along its one (implicit) axis: index 0, as torch
            return full((), 0, int64, x.data.backend)
        n = x.shape[axis]
        extreme = x.max(axis, keepdim=True) if largest else x.min(axis, keepdim=True)
        hits = x == extreme
        if x.dtype.is_float:  # a run holding NaN has NaN as its extreme, as in numpy
            hits = hits.logical_or(x.isnan())
        # the first index holding the extreme: max over hits of (n - index)
        position = arange(n, 0, -1, backend=x.data.backend).reshape(
            *[n if i == axis else 1 for i in range(x.ndim)])
        first = hits.cast(int64) * position
        out = n - first.max(axis, keepdim)
        if keepdim and flattened:  # numpy keeps every axis, each of size 1
            out = out.reshape(*(1,) * self.ndim)
        return out

    def argmax(self, axis=None, keepdim: bool = False) -> Tensor:
        """Index of the first maximum along ``axis`` (of the flattened tensor if None); a NaN
        counts as the maximum, as in numpy."""
        return self._arg_extreme(axis, keepdim, largest=True)

    def argmin(self, axis=None, keepdim: bool = False) -> Tensor:
        """Index of the first minimum along ``axis``; a NaN counts as the minimum."""
        return self._arg_extreme(axis, keepdim, largest=False)

    def _peak(self, axis) -> Tensor:
        """The maximum along ``axis`` (axes kept, no gradient), a shift that keeps exp from
        overflowing; 0 over an empty axis, where there is nothing to shift."""
        x = self.detach()
        empty = x._empty_reduction(axis, True, 0)
        return x.max(axis, keepdim=True) if empty is None else empty

    def logsumexp(self, axis=None, keepdim: bool = False) -> Tensor:
        """log(sum(exp(x))) along ``axis``, computed without overflow; -inf over an empty
        axis (the log of an empty sum)."""
        x = self._float()
        peak = x._peak(axis)
        peak = peak.isinf().where(0.0, peak)  # all -inf (or inf): no shift, the result is exact
        out = (x - peak).exp().sum(axis, keepdim=True).log() + peak
        return out if keepdim else x._dropped(out, x._axes(axis), keepdim)

    def softmax(self, axis: int = -1) -> Tensor:
        x = self._float()
        e = (x - x._peak(axis)).exp()
        return e / e.sum(axis, keepdim=True)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return self._float() - self.logsumexp(axis, keepdim=True)

    # --- movement ------------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        shape = _shape_arg(shape)
        if shape.count(-1) > 1:
            raise ValueError(f"reshape to {shape}: at most one -1")
        if -1 in shape:
            known = math.prod(n for n in shape if n != -1)
            if known == 0 or self.numel() % known:
                raise ValueError(f"cannot reshape {self.shape} to {shape}")
            shape = tuple(self.numel() // known if n == -1 else n for n in shape)
        if any(n < 0 for n in shape) or math.prod(shape) != self.numel():
            raise ValueError(f"cannot reshape {self.shape} ({self.numel()} elements) to {shape}")
        if shape == self.shape:
            return self
        return _apply(F.Reshape, self, shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = self._axis(start_dim), self._axis(end_dim)
        return self.reshape(*self.shape[:start], -1 if self.numel() else
                            math.prod(self.shape[start:end + 1]), *self.shape[end + 1:])

    def squeeze(self, axis=None) -> Tensor:
        """Drop axes of size 1 (all of them, or those named); a 0-d tensor takes axis 0 or -1
        and stays as it is, as in torch."""
        if self.ndim == 0:
            self._axes(axis)  # checks the axes: 0 and -1 only
            return self
        axes = ([i for i, n in enumerate(self.shape) if n == 1] if axis is None
                else self._axes(axis))
        for a in axes:
            if self.shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of size {self.shape[a]}")
        return self.reshape(*[n for i, n in enumerate(self.shape) if i not in axes])

    def unsqueeze(self, axis: int) -> Tensor:
        axis = self._axis(axis, self.ndim + 1)
        return self.reshape(*self.shape[:axis], 1, *self.shape[axis:])

    def permute(self, *order) -> Tensor:
        order = _shape_arg(order)
        if sorted(self._axis(a) for a in order) != list(range(self.ndim)):
            raise ValueError(f"permute of {self.ndim} axes needs a permutation of them, "
                             f"not {order}")
        order = tuple(self._axis(a) for a in order)
        if order == tuple(range(self.ndim)):
            return self
        return _apply(F.Permute, self, order=order)

    def transpose(self, axis0: int = -2, axis1: int = -1) -> Tensor:
        """Swap two axes (a 0-d tensor has none to swap: an IndexError)."""
        if self.ndim == 0:
            raise IndexError(f"transpose({axis0}, {axis1}) needs a tensor with axes; "
                             "got a 0-d tensor")
        order = list(range(self.ndim))
        a, b = self._axis(axis0), self._axis(axis1)
        order[a], order[b] = order[b], order[a]
        return self.permute(*order)

    @property
    def T(self) -> Tensor:
        """All axes reversed (as numpy's ``.T``)."""
        return self.permute(*reversed(range(self.ndim)))

    def expand(self, *shape) -> Tensor:
        """Broadcast to ``shape``; -1 keeps a size; new leading axes may be added."""
        shape = _shape_arg(shape)
        if len(shape) < self.ndim:
            raise ValueError(f"cannot expand {self.shape} to fewer dimensions {shape}")
        padded = (1,) * (len(shape) - self.ndim) + self.shape
        shape = tuple(old if new == -1 else new for old, new in zip(padded, shape, strict=False))
        for old, new in zip(padded, shape, strict=False):
            if old != new and old != 1:
                raise ValueError(f"cannot expand {self.shape} to {shape}")
        return _broadcast_to(self, shape)

    broadcast_to = expand

    def pad(self, widths, value=0) -> Tensor:
        """Pad with ``value``; ``widths`` is one ``(before, after)`` (or None) per axis."""
        widths = tuple((0, 0) if w is None else (int(w[0]), int(w[1])) for w in widths)
        if len(widths) != self.ndim or any(b < 0 or a < 0 for b, a in widths):
            raise ValueError(f"pad of shape {self.shape} needs {self.ndim} non-negative "
                             f"(before, after) pairs, got {widths}")
        check_fits(_py(value), self.dtype)
        if all(w == (0, 0) for w in widths):
            return self
        return _apply(F.Pad, self, widths=widths, value=_py(value))

    def shrink(self, bounds) -> Tensor:
        """Keep ``start <= i < stop`` along each axis; ``bounds`` has one pair (or None) each."""
        bounds = tuple((0, n) if b is None else (int(b[0]), int(b[1]))
                       for b, n in zip(bounds, self.shape, strict=False))
        if len(bounds) != self.ndim or any(not 0 <= b <= e <= n for (b, e), n in
                                           zip(bounds, self.shape, strict=False)):
            raise ValueError(f"shrink of shape {self.shape} needs {self.ndim} pairs "
                             f"0 <= start <= stop <= size, got {bounds}")
        if all(b == (0, n) for b, n in zip(bounds, self.shape, strict=False)):
            return self
        return _apply(F.Shrink, self, bounds=bounds)

    def flip(self, axis=None) -> Tensor:
        """Reverse the order of elements along ``axis`` (every axis if None)."""
        axes = self._axes(axis)
        if axes and self.ndim == 0:
            raise IndexError(f"flip({axis}) of a 0-d tensor, which has no axes")
        if not axes:
            return self
        return _apply(F.Flip, self, axes=axes)

    def repeat(self, *repeats) -> Tensor:
        """Tile the tensor ``repeats[i]`` times along axis i (as torch's ``repeat``)."""
        repeats = _shape_arg(repeats)
        if len(repeats) < self.ndim:
            raise ValueError(f"repeat needs at least {self.ndim} counts, got {repeats}")
        x = self.reshape(*(1,) * (len(repeats) - self.ndim), *self.shape)
        interleaved = [n for size in x.shape for n in (1, size)]
        expanded = [n for r, size in zip(repeats, x.shape, strict=False) for n in (r, size)]
        return x.reshape(*interleaved).expand(*expanded).reshape(
            *[r * size for r, size in zip(repeats, x.shape, strict=False)])

    def __getitem__(self, index) -> Tensor:
        """numpy's indexing: ints, slices, None, ``...``, integer tensors and boolean masks;
        integer tensors select (an inf elsewhere never reaches the result)."""
        from . import indexing

        return indexing.getitem(self, index)

    def gather(self, axis: int, index) -> Tensor:
        """torch's ``gather``: ``out[i][j] = self[index[i][j]][j]`` for ``axis=0``, and so on."""
        from . import indexing

        return indexing.gather(self, axis, index)

    def scatter_add(self, axis: int, index, src) -> Tensor:
        """torch's ``scatter_add``, out of place: ``src`` added at the positions ``index``
        names along ``axis`` (repeats add up)."""
        from . import indexing

        return indexing.scatter_add(self, axis, index, src)

    def index_select(self, axis: int, index) -> Tensor:
        """The positions of a 1-D integer ``index`` along ``axis``."""
        from . import indexing

        return indexing.index_select(self, axis, index)

    def cumsum(self, axis: int = 0) -> Tensor:
        """Running sums along ``axis``; bool and int32 sums are int64."""
        from . import positional

        return positional.cumsum(self, axis)

    def tril(self, k: int = 0) -> Tensor:
        """Zero above the ``k``-th diagonal of the last two axes."""
        from . import positional

        return positional.tril(self, k)

    def triu(self, k: int = 0) -> Tensor:
        """Zero below the ``k``-th diagonal of the last two axes."""
        from . import positional

        return positional.triu(self, k)

    def roll(self, shifts, axis=None) -> Tensor:
        """Shift elements along ``axis``, wrapping around (torch's ``roll``)."""
        from . import positional

        return positional.roll(self, shifts, axis)

    def split(self, split_size_or_sections, axis: int = 0) -> tuple[Tensor, ...]:
        """Pieces of a given size, or of the sizes listed, along ``axis``."""
        from . import positional

        return positional.split(self, split_size_or_sections, axis)

    def chunk(self, chunks: int, axis: int = 0) -> tuple[Tensor, ...]:
        """At most ``chunks`` equal pieces along ``axis`` (the last may be shorter)."""
        from . import positional

        return positional.chunk(self, chunks, axis)

    def conv2d(self, weight, bias=None, stride=1, padding=0, dilation=1,
               groups: int = 1) -> Tensor:
        """Convolution of an (N, C, *spatial) input with a weight of shape
        (F, C / groups, *kernel): 1-d, 2-d or 3-d, as the weight says (PyTorch's arguments)."""
        from . import conv

        return conv.conv(self, weight, bias, stride, padding, dilation, groups)

    def conv_transpose2d(self, weight, bias=None, stride=1, padding=0, output_padding=0,
                         groups: int = 1, dilation=1) -> Tensor:
        """Transposed convolution with a weight of shape (C, F / groups, *kernel)."""
        from . import conv

        return conv.conv_transpose(self, weight, bias, stride, padding, output_padding, groups,
                                   dilation)

    def max_pool2d(self, kernel_size=2, stride=None, padding=0, dilation=1,
                   ceil_mode: bool = False) -> Tensor:
        """The maximum of each window of the last two axes."""
        from . import conv

        return conv.max_pool(self, kernel_size, stride, padding, dilation, ceil_mode, 2)

    def avg_pool2d(self, kernel_size=2, stride=None, padding=0, ceil_mode: bool = False,
                   count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
        """The mean of each window of the last two axes."""
        from . import conv

        return conv.avg_pool(self, kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override, 2)

    def multinomial(self, num_samples: int, replacement: bool = False) -> Tensor:
        """Category indices drawn in proportion to this tensor's weights, (C,) or (N, C)
        (seeded by :func:`fusion.manual_seed`)."""
        from . import sampling

        return sampling.multinomial(self, num_samples, replacement)

    # --- linear algebra ------------------------------------------------------------------
    def matmul(self, other) -> Tensor:
        """Matrix product with numpy's rules for 1-D, 2-D and batched operands."""
        x, y = self, self._operand(other)
        other_shape = y.shape
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError("matmul of a 0-d tensor; use *")
        dtype = promote(x.dtype, y.dtype)
        if dtype is bool_:
            dtype = default_int
        x, y = x.cast(dtype), y.cast(dtype)
        vx, vy = x.ndim == 1, y.ndim == 1
        if vx:
            x = x.reshape(1, -1)
        if vy:
            y = y.reshape(-1, 1)
        if x.shape[-1] != y.shape[-2]:
            raise ValueError(f"matmul: shapes {self.shape} and {other_shape} do not "
                             f"fit ({x.shape[-1]} != {y.shape[-2]})")
        batch = broadcast_shape(x.shape[:-2], y.shape[:-2])
        x = x.expand(*batch, *x.shape[-2:])
        y = y.expand(*batch, *y.shape[-2:])
        out = _apply(F.Contract, x, y)
        if vx:
            out = out.squeeze(-2)
        if vy:
            out = out.squeeze(-1)
        return out

    dot = matmul

    # --- losses --------------------------------------------------------------------------
    def cross_entropy(self, target, reduction: str = "mean",
                      label_smoothing: float = 0.0) -> Tensor:
        """Cross-entropy of raw scores (..., C) against integer labels (...) or probabilities
        (..., C), computed through log_softmax so that no score overflows."""
        target = self._operand(target)
        log_probs = self.log_softmax(-1)
        classes = self.shape[-1]
        if target.dtype.is_float:
            if target.shape != self.shape:
                raise ValueError(f"probability targets of shape {target.shape} do not fit "
                                 f"scores of shape {self.shape}")
            probs = target.cast(log_probs.dtype)
        else:
            _check_labels(self, target)
            probs = one_hot(target, classes).cast(log_probs.dtype)
        if label_smoothing:
            probs = probs * (1 - label_smoothing) + label_smoothing / classes
        return _reduce_loss(-_weighted_log_probs(probs, log_probs), reduction)

    def binary_cross_entropy(self, target, reduction: str = "mean",
                             eps: float = 1e-7) -> Tensor:
        """-(y log p + (1 - y) log(1 - p)) with p (this tensor) clamped to [eps, 1 - eps], so
        log(0) never appears."""
        target = self._operand(target).cast(self.dtype)
        if target.shape != self.shape:
            raise ValueError(f"targets of shape {target.shape} do not fit {self.shape}")
        p = self.clip(eps, 1 - eps)
        return _reduce_loss(-(target * p.log() + (1 - target) * (1 - p).log()), reduction)


def _reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """(N...,) integer labels to (N..., num_classes) float32 rows of 0 and 1."""
    if labels.dtype.is_float:
        raise TypeError(f"one_hot needs integer labels, not {labels.dtype.name}")
    return _label_mask(labels, num_classes).float()


def _label_mask(labels: Tensor, num_classes: int) -> Tensor:
    """(N...,) integer labels to (N..., num_classes) bool rows, True at each label."""
    classes = arange(num_classes, backend=labels.data.backend)
    return labels.cast(default_int).unsqueeze(-1) == classes


def _weighted_log_probs(weights: Tensor, log_probs: Tensor) -> Tensor:
    """``weights * log_probs`` summed over the last axis, a zero weight contributing 0 even
    against a log-probability of -inf (the limit of p log q as p goes to 0; the product
    would be nan)."""
    return (weights == 0).where(0.0, weights * log_probs).sum(-1)


def _check_labels(logits: Tensor, target: Tensor) -> None:
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"labels of shape {target.shape} do not fit scores of shape "
                         f"{logits.shape} (expected {logits.shape[:-1]})")
    # a host check: a replay of a captured step checks each call's labels again
    _capture.host_check(target.data, _labels_in_range, logits.shape[-1])


def _labels_in_range(values: np.ndarray, classes: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= classes):
        raise ValueError(f"labels must lie in [0, {classes}), got values from {values.min()} "
                         f"to {values.max()}")


def _broadcast_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``x`` broadcast to ``shape`` (checked by the caller) as one Expand: one view."""
    if x.data.shape == shape:
        return x
    return _apply(F.Expand, x, shape=shape)


def realize(*tensors: Tensor) -> None:
    """Compute the values of ``tensors`` now, together: work they share runs once.

    >>> x = fusion.Tensor([1.0, 2.0])
    >>> fusion.realize(x.exp(), x.sum())
    """
    realize_buffers([t.data for t in tensors])


def _py(value):
    """A numpy scalar as the Python number it holds."""
    return value.item() if isinstance(value, np.generic) else value


def _order_reversed(x: Tensor) -> Tensor:
    """An order-reversing map that is its own inverse, so that min is built from max:
    ``-x`` for floats, ``-1 - x`` for integers. The latter (two's complement ``~x``) never
    overflows, where ``-x`` wraps the most negative integer onto itself."""
    return -x if x.dtype.is_float else -1 - x


def _compared_beyond_range(x: Tensor, other, op) -> Tensor | None:
    """``op(x, other)`` when ``other`` is a Python int that x's integer dtype (int64 for bool)
    cannot hold: every element lies on the same side of it as 0 does, so the answer is one
    value, as numpy gives it. None for any other operand, compared as usual."""
    other = _py(other)
    if type(other) is not int or x.dtype.is_float:
        return None
    try:
        check_fits(other, x.dtype if x.dtype.is_int else default_int)
    except OverflowError:
        return full(x.shape, op(0, other), bool_, x.data.backend)
    return None


def _less_equal(x: Tensor, y: Tensor) -> Tensor:
    """``x <= y`` of operands of one dtype and shape. For floats that is ``x < y or x == y``:
    ``not y < x`` would call a NaN less than or equal to everything."""
    if x.dtype.is_float:
        return _apply(F.Less, x, y).logical_or(_apply(F.Equal, x, y))
    return _apply(F.Less, y, x).logical_not()


# --- creation -----------------------------------------------------------------------------------
def _make(array: np.ndarray, dtype: DType, backend, requires_grad: bool) -> Tensor:
    out = _wrap(Buffer.from_numpy(get_backend(backend), array, dtype))
    return out.requires_grad_(True) if requires_grad else out


def full(shape, value, dtype=None, backend=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``value`` (dtype from the value if not given)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if dtype is None:
        dtype = bool_ if isinstance(value, bool) else (
            default_int if isinstance(value, int) else default_float)
    dtype = to_dtype(dtype)
    check_fits(_py(value), dtype)
    out = _wrap(Buffer.full(get_backend(backend), shape, _py(value), dtype))
    return out.requires_grad_(True) if requires_grad else out


def zeros(*shape, dtype=None, backend=None, requires_grad: bool = False) -> Tensor:
    return full(_shape_arg(shape), 0.0, dtype or default_float, backend, requires_grad)


def ones(*shape, dtype=None, backend=None, requires_grad: bool = False) -> Tensor:
    return full(_shape_arg(shape), 1.0, dtype or default_float, backend, requires_grad)


def full_like(t: Tensor, value, dtype=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, value, dtype or t.dtype, t.data.backend, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return full_like(t, 0, dtype, requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return full_like(t, 1, dtype, requires_grad)


def arange(start, stop=None, step=1, dtype=None, backend=None) -> Tensor:
    """``start, start + step, ...`` below ``stop`` (int64 for integer arguments)."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange step must not be 0")
    integral = all(isinstance(v, int | np.integer) for v in (start, stop, step))
    dtype = to_dtype(dtype) if dtype is not None else (default_int if integral else default_float)
    return _make(np.arange(start, stop, step).astype(dtype.np), dtype, backend, False)


def linspace(start, stop, num: int, dtype=None, backend=None) -> Tensor:
    dtype = to_dtype(dtype or default_float)
    return _make(np.linspace(start, stop, num).astype(dtype.np), dtype, backend, False)


def eye(n: int, m: int | None = None, dtype=None, backend=None) -> Tensor:
    dtype = to_dtype(dtype or default_float)
    return _make(np.eye(n, m, dtype=dtype.np), dtype, backend, False)


def _random(kind: str, params: tuple, shape, dtype, backend, requires_grad) -> Tensor:
    dtype = to_dtype(dtype or default_float)
    if not dtype.is_float:
        raise TypeError(f"random floats need a float dtype, not {dtype.name}")
    # drawn through host_values: a replay of a captured step draws new numbers, in order
    (array,) = _capture.host_values(_rng.draw, kind, params, _shape_arg(shape), dtype.np)
    return _make(array, dtype, backend, requires_grad)


def rand(*shape, dtype=None, backend=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1), from the generator seeded by :func:`fusion.manual_seed`."""
    return _random("random", (), shape, dtype, backend, requires_grad)


def randn(*shape, dtype=None, backend=None, requires_grad: bool = False) -> Tensor:
    """Standard normal, from the generator seeded by :func:`fusion.manual_seed`."""
    return _random("standard_normal", (), shape, dtype, backend, requires_grad)


def uniform(shape, low: float = 0.0, high: float = 1.0, dtype=None, backend=None,
            requires_grad: bool = False) -> Tensor:
    return _random("uniform", (low, high), (shape,), dtype, backend, requires_grad)


def normal(shape, mean: float = 0.0, std: float = 1.0, dtype=None, backend=None,
           requires_grad: bool = False) -> Tensor:
    return _random("normal", (mean, std), (shape,), dtype, backend, requires_grad)


def randint(low: int, high: int, shape, backend=None) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    (array,) = _capture.host_values(_rng.draw, "integers", (low, high), shape, np.int64)
    return _make(array, int64, backend, False)


def tensor(data, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    """A new tensor holding a copy of ``data``; the same as :class:`Tensor`."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, backend=backend)


def from_numpy(array: np.ndarray, backend=None) -> Tensor:
    """A tensor that shares ``array``'s memory, where the backend keeps numpy arrays (the
    numpy and numba backends; another backend may have to copy).

    Writes to ``array`` show through: they change the tensor, every view of it (reshapes,
    slices, transposes) and whatever is computed from it afterwards, including a backward
    pass through a graph that used it. Fusion itself never writes into it. The array must
    already have one of Fusion's dtypes (bool, int32, int64, float32, float64); use
    :class:`Tensor`, which copies and converts, for anything else.

    >>> a = np.zeros(3, dtype=np.float32)
    >>> t = fusion.from_numpy(a)
    >>> a[0] = 1.0
    >>> t.tolist()
    [1.0, 0.0, 0.0]
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy array, got {type(array).__name__}; "
                        "fusion.Tensor(data) copies any array-like")
    dtype = _NATIVE_DTYPES.get(array.dtype)
    if dtype is None:
        raise TypeError(f"from_numpy shares memory, so it needs an array of dtype bool, int32, "
                        f"int64, float32 or float64 (native byte order), got {array.dtype}; "
                        "convert it with astype() or copy it with fusion.Tensor(array)")
    return _wrap(Buffer.from_numpy(get_backend(backend), array, dtype))


def cat(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (each padded to the total, then summed)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat of no tensors")
    first = tensors[0]
    tensors = [first._operand(t) for t in tensors]
    zero_d = next((i for i, t in enumerate(tensors) if t.ndim == 0), None)
    if zero_d is not None:
        raise ValueError(f"cat joins tensors along an existing axis, but tensor {zero_d} is "
                         "0-d; use fusion.stack, or reshape it to (1,)")
    axis = first._axis(axis)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = promote(dtype, t.dtype)
        if t.ndim != first.ndim or any(a != b for i, (a, b) in
                                       enumerate(zip(t.shape, first.shape, strict=False))
                                       if i != axis):
            raise ValueError(f"cat along axis {axis}: shapes {first.shape} and {t.shape} differ "
                             "off that axis")
    total = sum(t.shape[axis] for t in tensors)
    out, offset = None, 0
    for t in tensors:
        n = t.shape[axis]
        widths = [(0, 0)] * t.ndim
        widths[axis] = (offset, total - offset - n)
        # -0.0 around each piece: v + -0.0 is v for every v, the sign of a zero included
        piece = t.cast(dtype).pad(widths, value=-0.0 if dtype.is_float else 0)
        out = piece if out is None else (out.logical_or(piece) if dtype is bool_ else out + piece)
        offset += n
    return out


def stack(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack of no tensors")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack needs tensors of one shape, got {sorted(shapes)}")
    axis = tensors[0]._axis(axis, tensors[0].ndim + 1)
    return cat([t.unsqueeze(axis) for t in tensors], axis)


def persist(*tensors: Tensor | None) -> None:
    """Compute ``tensors`` now, together, and keep their values where their backend keeps
    data, so that what follows starts from them rather than from the operations that made
    them (None is skipped). Values, graphs and gradients are unchanged.

    Eager backends (numpy, numba) have nothing to do. A lazy or remote backend (dask) needs it
    for state that lives across steps; an optimizer step persists its parameters, their
    gradients and its state this way, and a user may persist, say, a data set normalised once:

    >>> x = fusion.Tensor([[1.0, 2.0], [3.0, 5.0]])
    >>> x = (x - x.mean(0)) / x.std(0)  # on dask: a graph of a dozen primitives
    >>> fusion.persist(x)               # now a computed value, kept where the backend runs
    """
    _persist_buffers(t.data for t in tensors if t is not None)


def where(condition, x, y) -> Tensor:
    if not isinstance(condition, Tensor):
        ref = x if isinstance(x, Tensor) else y
        condition = ref._operand(condition) if isinstance(ref, Tensor) else Tensor(condition)
    return condition.where(x, y)


def maximum(x, y) -> Tensor:
    return (x if isinstance(x, Tensor) else y._operand(x)).maximum(y)


def minimum(x, y) -> Tensor:
    return (x if isinstance(x, Tensor) else y._operand(x)).minimum(y)
