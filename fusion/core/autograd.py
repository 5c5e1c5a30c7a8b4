"""One Function per differentiable primitive: forward and backward written on Buffers.

Gradients come in dual pairs: EXPAND and SUM, PAD and SHRINK, PERMUTE and its inverse.
``needs_input_grad[i]`` tells ``backward`` whether parent ``i`` wants a gradient; a parent
that does not gets ``None`` and costs nothing.
"""

from __future__ import annotations

import math

from .buffer import Buffer
from .dtypes import DType
from .ops import MovementOp


class Function:
    """The record of one primitive in the graph: its parents and what backward needs."""

    differentiable = True
    #: True once :meth:`release` dropped what backward needs.
    released = False

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self.parents: tuple = ()

    @property
    def op(self) -> str:
        return type(self).__name__

    def forward(self, *inputs: Buffer, **kwargs) -> Buffer:
        raise NotImplementedError

    def backward(self, grad: Buffer) -> Buffer | tuple[Buffer | None, ...]:
        raise NotImplementedError(f"{self.op} has no gradient")

    def release(self) -> None:
        """Drop what forward saved for backward (after which backward cannot run)."""
        self.__dict__ = {"needs_input_grad": self.needs_input_grad, "parents": self.parents,
                         "released": True}


def _sum_to(grad: Buffer, shape: tuple[int, ...]) -> Buffer:
    """Sum ``grad`` over the axes along which ``shape`` was expanded (EXPAND's dual)."""
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape, strict=False)) if g != s)
    return grad.sum(axes) if axes else grad


# --- unary ----------------------------------------------------------------------------------
class Neg(Function):
    def forward(self, x):
        return x.neg()

    def backward(self, grad):
        return grad.neg()


class Relu(Function):
    def forward(self, x):
        self.x = x
        return x.maximum(x.const(0))

    def backward(self, grad):
        return self.x.const(0).cmplt(self.x).where(grad, grad.const(0))


class Exp(Function):
    def forward(self, x):
        self.out = x.exp()
        return self.out

    def backward(self, grad):
        return grad.mul(self.out)


class Log(Function):
    def forward(self, x):
        self.x = x
        return x.log()

    def backward(self, grad):
        return grad.div(self.x)


class Sqrt(Function):
    def forward(self, x):
        self.out = x.sqrt()
        return self.out

    def backward(self, grad):
        return grad.div(self.out.mul(self.out.const(2)))


class Recip(Function):
    def forward(self, x):
        self.out = x.recip()
        return self.out

    def backward(self, grad):
        return grad.mul(self.out).mul(self.out).neg()


class Sin(Function):
    def forward(self, x):
        self.x = x
        return x.sin()

    def backward(self, grad):
        # cos(x) = sin(x + pi/2)
        return grad.mul(self.x.add(self.x.const(math.pi / 2)).sin())


class Cast(Function):
    def forward(self, x, dtype: DType):
        self.input_dtype = x.dtype
        return x.cast(dtype)

    def backward(self, grad):
        return grad.cast(self.input_dtype)


# --- binary ---------------------------------------------------------------------------------
class Add(Function):
    def forward(self, x, y):
        return x.add(y)

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    def forward(self, x, y):
        return x.sub(y)

    def backward(self, grad):
        return grad, grad.neg() if self.needs_input_grad[1] else None


class Mul(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x.mul(y)

    def backward(self, grad):
        return (grad.mul(self.y) if self.needs_input_grad[0] else None,
                grad.mul(self.x) if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x.div(y)

    def backward(self, grad):
        gx = grad.div(self.y) if self.needs_input_grad[0] else None
        gy = grad.mul(self.x).div(self.y.mul(self.y)).neg() if self.needs_input_grad[1] else None
        return gx, gy


class Pow(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        self.out = x.pow(y)
        return self.out

    def backward(self, grad):
        gx = gy = None
        if self.needs_input_grad[0]:  # y * x ** (y - 1)
            gx = grad.mul(self.y).mul(self.x.pow(self.y.sub(self.y.const(1))))
        if self.needs_input_grad[1]:  # x ** y * log(x)
            gy = grad.mul(self.out).mul(self.x.log())
        return gx, gy


class Maximum(Function):
    """Elementwise maximum; where x == y the gradient is shared equally."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x.maximum(y)

    def backward(self, grad):
        half = grad.const(0.5)
        share = self.y.cmplt(self.x).where(grad.const(1), self.x.cmpeq(self.y).where(
            half, grad.const(0)))
        gx = grad.mul(share) if self.needs_input_grad[0] else None
        gy = grad.mul(share.const(1).sub(share)) if self.needs_input_grad[1] else None
        return gx, gy


class Equal(Function):
    differentiable = False

    def forward(self, x, y):
        return x.cmpeq(y)


class Less(Function):
    differentiable = False

    def forward(self, x, y):
        return x.cmplt(y)


# --- ternary --------------------------------------------------------------------------------
class Where(Function):
    def forward(self, cond, x, y):
        self.cond = cond
        return cond.where(x, y)

    def backward(self, grad):
        zero = grad.const(0)
        return (None,
                self.cond.where(grad, zero) if self.needs_input_grad[1] else None,
                self.cond.where(zero, grad) if self.needs_input_grad[2] else None)


# --- reduce ---------------------------------------------------------------------------------
class Sum(Function):
    def forward(self, x, axes: tuple[int, ...]):
        self.input_shape = x.shape
        return x.sum(axes)

    def backward(self, grad):
        return grad.expand(self.input_shape)


class Max(Function):
    """Reduce-max; the gradient is shared equally among tied maxima (NaNs, if any)."""

    def forward(self, x, axes: tuple[int, ...]):
        self.x, self.axes = x, axes
        self.out = x.max(axes)
        return self.out

    def backward(self, grad):
        hit = self.x.cmpeq(self.out.expand(self.x.shape))
        # a NaN is the maximum of a run holding it, though it equals nothing, itself included
        hit = self.x.cmpeq(self.x).where(hit, hit.const(True)).cast(grad.dtype)
        count = hit.sum(self.axes).expand(self.x.shape)
        return hit.div(count).mul(grad.expand(self.x.shape))


# --- movement -------------------------------------------------------------------------------
class Reshape(Function):
    def forward(self, x, shape: tuple[int, ...]):
        self.input_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.input_shape)


class Expand(Function):
    """Broadcast to ``shape``, which may have more (leading) axes than the input."""

    def forward(self, x, shape: tuple[int, ...]):
        self.input_shape = x.shape
        if len(shape) != len(x.shape):
            x = x.reshape((1,) * (len(shape) - len(x.shape)) + x.shape)
        self.padded_shape = x.shape
        return x.expand(shape)

    def backward(self, grad):
        return _sum_to(grad, self.padded_shape).reshape(self.input_shape)


class Permute(Function):
    def forward(self, x, order: tuple[int, ...]):
        self.order = order
        return x.permute(order)

    def backward(self, grad):
        inverse = [0] * len(self.order)
        for i, axis in enumerate(self.order):
            inverse[axis] = i
        return grad.permute(tuple(inverse))


class Pad(Function):
    def forward(self, x, widths: tuple[tuple[int, int], ...], value=0):
        self.bounds = tuple((b, b + n) for n, (b, _) in zip(x.shape, widths, strict=False))
        return x.pad(widths, value)

    def backward(self, grad):
        return grad.shrink(self.bounds)


class Shrink(Function):
    def forward(self, x, bounds: tuple[tuple[int, int], ...]):
        self.widths = tuple((start, n - stop)
                            for n, (start, stop) in zip(x.shape, bounds, strict=True))
        return x.shrink(bounds)

    def backward(self, grad):
        return grad.pad(self.widths)


class Flip(Function):
    def forward(self, x, axes: tuple[int, ...]):
        self.axes = axes
        return x.flip(axes)

    def backward(self, grad):
        return grad.flip(self.axes)


# --- contraction (optional backend fast path, composed from primitives otherwise) -----------
def _swap_order(ndim: int) -> tuple[int, ...]:
    return (*range(ndim - 2), ndim - 1, ndim - 2)


def _swap_last(x: Buffer) -> Buffer:
    return x.permute(_swap_order(len(x.shape)))


def _is_swapped(x: Buffer) -> bool:
    """Whether ``x`` is its source with the last two axes swapped (a transposed weight)."""
    return x.op is MovementOp.PERMUTE and x.arg[0] == _swap_order(len(x.shape))


class Contract(Function):
    """Batched matmul: (..., m, k) @ (..., k, n) with equal batch axes."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x.contract(y)

    def backward(self, grad):
        gx = grad.contract(_swap_last(self.y)) if self.needs_input_grad[0] else None
        gy = None
        if self.needs_input_grad[1]:
            if _is_swapped(self.y):
                # y = w^T (a Linear layer's weight): (g^T @ x)^T, whose swap back to w's
                # gradient is then laid out as w is, in the order an optimizer reads it
                gy = _swap_last(_swap_last(grad).contract(self.x))
            else:
                gy = _swap_last(self.x).contract(grad)
        return gx, gy
