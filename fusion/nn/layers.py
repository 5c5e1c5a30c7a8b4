"""Layers with parameters or state: Linear, BatchNorm1d, Dropout, Flatten, Identity.

Every built-in layer can say how it was built (``get_config()``: its constructor arguments as
JSON values), which is what :func:`fusion.save` writes beside the weights.
"""

from __future__ import annotations

import math

from ..core.backend import Backend
from ..core.dtypes import default_float, int64, to_dtype
from ..core.grad_mode import no_grad
from ..core.tensor import Tensor, ones, rand, zeros, zeros_like
from . import init
from .module import Module
from .parameter import Parameter


class Identity(Module):
    """Returns its input.

    >>> Identity()(fusion.ones(2)).tolist()
    [1.0, 1.0]
    """

    def forward(self, x: Tensor) -> Tensor:
        return x

    def get_config(self) -> dict:
        return {}


class Linear(Module):
    """``y = x @ weight.T + bias``, with weight of shape (out_features, in_features).

    Initialised as PyTorch does: weight and bias uniform on +-1/sqrt(in_features) (Kaiming
    uniform with a = sqrt(5)). Parameters are created on ``backend`` (default: the current
    backend) in ``dtype`` (default float32).

    >>> layer = Linear(3, 2)
    >>> layer(fusion.ones(4, 3)).shape
    (4, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None,
                 backend: str | Backend | None = None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear needs non-negative sizes, got {in_features} and "
                             f"{out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dtype = to_dtype(dtype or default_float)
        self.weight = Parameter(zeros(out_features, in_features, dtype=dtype, backend=backend))
        if bias:
            self.bias = Parameter(zeros(out_features, dtype=dtype, backend=backend))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects inputs "
                             f"of shape (..., {self.in_features}), got {x.shape}")
        out = x.matmul(self.weight.T)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "dtype": self.weight.dtype.name}


class Flatten(Module):
    """Flatten axes ``start_dim`` to ``end_dim`` into one (by default all but the batch axis).

    >>> Flatten()(fusion.zeros(2, 3, 4)).shape
    (2, 12)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def get_config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the rest by 1/(1-p),
    so the expected value is unchanged; in evaluation, the identity.

    The mask comes from Fusion's generator: seed it with :func:`fusion.manual_seed`.

    >>> drop = Dropout(0.5).eval()
    >>> drop(fusion.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must lie in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = rand(*x.shape, dtype=x.dtype if x.dtype.is_float else None,
                    backend=x.data.backend) >= self.p
        # the mask carries no gradient: it is built from constants, then multiplied in once
        return x * (keep.cast(x.dtype) * (1.0 / (1.0 - self.p)))

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def get_config(self) -> dict:
        return {"p": self.p}


class BatchNorm1d(Module):
    """Normalise each feature (axis 1 of (N, C) or (N, C, L)) over the batch, then scale
    and shift (Ioffe and Szegedy, 2015).

    In training it uses the batch's mean and biased variance and updates the running
    estimates ``running = (1 - momentum) * running + momentum * batch`` (with the unbiased
    batch variance, as PyTorch does; ``momentum=None`` keeps a cumulative average). In
    evaluation it uses the running estimates.

    >>> norm = BatchNorm1d(3)
    >>> y = norm(fusion.randn(8, 3))
    >>> sorted(norm.state_dict())
    ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None,
                 backend: str | Backend | None = None):
        super().__init__()
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = to_dtype(dtype or default_float)
        if not dtype.is_float:
            raise TypeError(f"BatchNorm1d needs a float dtype, not {dtype.name}")
        if self.affine:
            self.weight = Parameter(ones(num_features, dtype=dtype, backend=backend))
            self.bias = Parameter(zeros(num_features, dtype=dtype, backend=backend))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype,
                                                       backend=backend))
            self.register_buffer("running_var", ones(num_features, dtype=dtype,
                                                     backend=backend))
            self.register_buffer("num_batches_tracked", zeros((), dtype=int64, backend=backend))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked = zeros_like(self.num_batches_tracked)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expects inputs of shape "
                             f"(N, {self.num_features}) or (N, {self.num_features}, L), "
                             f"got {x.shape}")
        axes = (0,) if x.ndim == 2 else (0, 2)
        stat_shape = (1, self.num_features) + (() if x.ndim == 2 else (1,))
        if self.training or not self.track_running_stats:
            count = x.numel() // self.num_features
            if self.training and count < 2:
                raise ValueError(f"BatchNorm1d in training needs more than one value per "
                                 f"feature, got input of shape {x.shape}")
            mean = x.mean(axes, keepdim=True)
            var = x.var(axes, keepdim=True, correction=0)
            if self.training and self.track_running_stats:
                self._update_running(mean, var, count)
        else:
            mean = self.running_mean.reshape(stat_shape)
            var = self.running_var.reshape(stat_shape)
        out = (x - mean) * (var + self.eps).rsqrt()
        if self.affine:
            out = out * self.weight.reshape(stat_shape) + self.bias.reshape(stat_shape)
        return out

    def _update_running(self, mean: Tensor, var: Tensor, count: int) -> None:
        with no_grad():
            self.num_batches_tracked = self.num_batches_tracked + 1
            if self.momentum is None:
                factor = 1.0 / self.num_batches_tracked.item()
            else:
                factor = self.momentum
            batch_mean = mean.detach().reshape(self.num_features)
            unbiased = var.detach().reshape(self.num_features) * (count / (count - 1))
            self.running_mean = (self.running_mean * (1.0 - factor) + batch_mean * factor)
            self.running_var = (self.running_var * (1.0 - factor) + unbiased * factor)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")

    def get_config(self) -> dict:
        reference = self.weight if self.affine else self.running_mean
        config = {"num_features": self.num_features, "eps": self.eps,
                  "momentum": self.momentum, "affine": self.affine,
                  "track_running_stats": self.track_running_stats}
        if reference is not None:
            config["dtype"] = reference.dtype.name
        return config
