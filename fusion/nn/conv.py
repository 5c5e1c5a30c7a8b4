"""Convolution and pooling layers: Conv1d, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d.

Arguments, defaults, parameter shapes and initialisation are PyTorch's, so a state dict moves
between the two by name. Each layer can say how it was built (``get_config()``), so that
:func:`fusion.save` writes and :func:`fusion.load` rebuilds it.
"""

from __future__ import annotations

import math

from ..core.backend import Backend
from ..core.dtypes import default_float, to_dtype
from ..core.tensor import Tensor, zeros
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _ints(value, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    values = tuple(int(v) for v in value)
    if len(values) != n:
        raise ValueError(f"{name} needs 1 or {n} values, got {value}")
    return values


class _ConvNd(Module):
    """What the convolutions share: checks, parameters, PyTorch's initialisation, config."""

    _dims = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 output_padding=0, dtype=None, backend: str | Backend | None = None):
        super().__init__()
        n, name = self._dims, type(self).__name__
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name} needs positive channel counts, got {in_channels} and "
                             f"{out_channels}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels ({in_channels}) "
                             f"and out_channels ({out_channels})")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _ints(kernel_size, n, "kernel_size")
        self.stride = _ints(stride, n, "stride")
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self._transposed:
                raise ValueError(f"{name}: padding must be an int or a tuple"
                                 f"{'' if self._transposed else ', same or valid'}, "
                                 f"not {padding!r}")
            self.padding = padding
        else:
            self.padding = _ints(padding, n, "padding")
        self.dilation = _ints(dilation, n, "dilation")
        self.output_padding = _ints(output_padding, n, "output_padding")
        self.groups = int(groups)
        self.padding_mode = padding_mode
        dtype = to_dtype(dtype or default_float)
        shape = ((in_channels, out_channels // groups) if self._transposed else
                 (out_channels, in_channels // groups))
        self.weight = Parameter(zeros(*shape, *self.kernel_size, dtype=dtype, backend=backend))
        if bias:
            self.bias = Parameter(zeros(out_channels, dtype=dtype, backend=backend))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights with a = sqrt(5) and a bias uniform on +-1/sqrt(fan_in),
        fan_in from the weight's shape (PyTorch's rule, transposed layers included)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _check(self, x: Tensor) -> None:
        n = self._dims
        if x.ndim not in (n + 1, n + 2) or x.shape[-n - 1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}({self.in_channels}, {self.out_channels}) "
                             f"expects input of shape (N, {self.in_channels}, {n} spatial "
                             f"axes) or ({self.in_channels}, {n} spatial axes), got {x.shape}")

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self._dims:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            text += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._dims:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")

    def get_config(self) -> dict:
        config = {"in_channels": self.in_channels, "out_channels": self.out_channels,
                  "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                  "padding": (self.padding if isinstance(self.padding, str)
                              else list(self.padding)),
                  "dilation": list(self.dilation), "groups": self.groups,
                  "bias": self.bias is not None, "padding_mode": self.padding_mode,
                  "dtype": self.weight.dtype.name}
        if self._transposed:
            config["output_padding"] = list(self.output_padding)
        return config


class _Conv(_ConvNd):
    """A convolution (not transposed) through ``_function``, one of the functional convs."""

    _function = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype=None, backend: str | Backend | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype=dtype, backend=backend)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return self._function(x, self.weight, self.bias, self.stride, self.padding,
                              self.dilation, self.groups)


class Conv1d(_Conv):
    """1-d convolution over (N, C, L): weight (out_channels, in_channels / groups, k).

    >>> Conv1d(2, 4, 3, padding=1)(fusion.zeros(8, 2, 10)).shape
    (8, 4, 10)
    """

    _dims = 1
    _function = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-d convolution over (N, C, H, W): weight (out_channels, in_channels / groups, kh, kw).

    >>> Conv2d(1, 8, 3, padding=1)(fusion.zeros(4, 1, 8, 8)).shape
    (4, 8, 8, 8)
    """


class ConvTranspose2d(_ConvNd):
    """2-d transposed convolution: weight (in_channels, out_channels / groups, kh, kw); output
    size ``(i - 1) s - 2 p + d (k - 1) + output_padding + 1`` per axis.

    >>> ConvTranspose2d(4, 2, 2, stride=2)(fusion.zeros(1, 4, 3, 3)).shape
    (1, 2, 6, 6)
    """

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", dtype=None,
                 backend: str | Backend | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype, backend)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = _ints(kernel_size, 2, "kernel_size")
        self.stride = self.kernel_size if stride is None else _ints(stride, 2, "stride")
        self.padding = _ints(padding, 2, "padding")
        self.ceil_mode = bool(ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")

    def get_config(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "ceil_mode": self.ceil_mode}


class MaxPool2d(_Pool2d):
    """The maximum of each window of (N, C, H, W); ``stride`` defaults to the kernel size.

    >>> MaxPool2d(2)(fusion.zeros(1, 3, 8, 8)).shape
    (1, 3, 4, 4)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if return_indices:
            raise ValueError("MaxPool2d(return_indices=True) is not supported")
        self.dilation = _ints(dilation, 2, "dilation")

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}"

    def get_config(self) -> dict:
        return {**super().get_config(), "dilation": list(self.dilation)}


class AvgPool2d(_Pool2d):
    """The mean of each window of (N, C, H, W); ``stride`` defaults to the kernel size.

    >>> AvgPool2d(2)(fusion.ones(1, 1, 4, 4)).tolist()
    [[[[1.0, 1.0], [1.0, 1.0]]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def get_config(self) -> dict:
        return {**super().get_config(), "count_include_pad": self.count_include_pad,
                "divisor_override": self.divisor_override}
