"""Layers with parameters or state: Linear, BatchNorm1d/2d, LayerNorm, Embedding, Dropout,
Flatten, Unflatten, Identity.

Every built-in layer can say how it was built (``get_config()``: its constructor arguments as
JSON values), which is what :func:`fusion.save` writes beside the weights.
"""

from __future__ import annotations

import math

from ..core.backend import Backend
from ..core.dtypes import default_float, int64, to_dtype
from ..core.grad_mode import no_grad
from ..core.tensor import Tensor, ones, realize, zeros, zeros_like
from . import functional as F
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
        return F.dropout(x, self.p, self.training)

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
            raise TypeError(f"{type(self).__name__} needs a float dtype, not {dtype.name}")
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

    #: the input ranks a layer takes, and how its error message writes them
    _ranks = (2, 3)
    _shapes = "(N, {C}) or (N, {C}, L)"

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}) expects inputs of shape "
                             f"{self._shapes.format(C=self.num_features)}, got {x.shape}")
        axes = (0, *range(2, x.ndim))
        stat_shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        if self.training or not self.track_running_stats:
            count = x.numel() // self.num_features
            if self.training and count < 2:
                raise ValueError(f"{name} in training needs more than one value per "
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
            tracked = self.num_batches_tracked + 1
            if self.momentum is None:  # a cumulative average, computed without a host read
                factor = 1.0 / tracked.cast(mean.dtype)
            else:
                factor = self.momentum
            batch_mean = mean.detach().reshape(self.num_features)
            unbiased = var.detach().reshape(self.num_features) * (count / (count - 1))
            running_mean = self.running_mean * (1.0 - factor) + batch_mean * factor
            running_var = self.running_var * (1.0 - factor) + unbiased * factor
            # state carried from step to step is computed now: on a lazy backend its graph
            # would otherwise grow by a step each step, holding every batch it was computed
            # from; then it is written into the statistics' own storage
            realize(running_mean, running_var, tracked)
            self.running_mean.assign(running_mean)
            self.running_var.assign(running_var)
            self.num_batches_tracked.assign(tracked)

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


class BatchNorm2d(BatchNorm1d):
    """:class:`BatchNorm1d` for images: each channel of (N, C, H, W) normalised over the
    batch and both spatial axes, with the same running estimates and arguments.

    >>> BatchNorm2d(3)(fusion.randn(4, 3, 5, 5)).shape
    (4, 3, 5, 5)
    """

    _ranks = (4,)
    _shapes = "(N, {C}, H, W)"


class LayerNorm(Module):
    """Normalise each sample over its trailing ``normalized_shape`` axes (mean 0, biased
    variance 1), then scale by ``weight`` (ones) and shift by ``bias`` (zeros), elementwise.

    >>> norm = LayerNorm(4)
    >>> [round(v, 4) for v in norm(fusion.Tensor([[1.0, 2.0, 3.0, 4.0]])).mean(-1).tolist()]
    [0.0]
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None, backend: str | Backend | None = None):
        super().__init__()
        shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                 else tuple(normalized_shape))
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = to_dtype(dtype or default_float)
        if self.elementwise_affine:
            self.weight = Parameter(ones(*self.normalized_shape, dtype=dtype, backend=backend))
            if bias:
                self.bias = Parameter(zeros(*self.normalized_shape, dtype=dtype,
                                            backend=backend))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self._dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

    def get_config(self) -> dict:
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine,
                "bias": self.bias is not None or not self.elementwise_affine,
                "dtype": (self.weight.dtype if self.weight is not None else self._dtype).name}


class Embedding(Module):
    """A lookup table: integer indices of any shape to rows of ``weight``
    (num_embeddings, embedding_dim), initialised from N(0, 1) as in PyTorch; the row
    ``padding_idx`` starts at zero and gets no gradient.

    Each lookup selects rows (an inf elsewhere in the table never leaks into them); it builds
    an (indices x num_embeddings) mask for the contraction that picks them.

    >>> Embedding(10, 3)(fusion.Tensor([[1, 2], [4, 9]])).shape
    (2, 2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=None, backend: str | Backend | None = None):
        super().__init__()
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"Embedding needs positive sizes, got {num_embeddings} and "
                             f"{embedding_dim}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is out of range for "
                                 f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        dtype = to_dtype(dtype or default_float)
        self.weight = Parameter(zeros(num_embeddings, embedding_dim, dtype=dtype,
                                      backend=backend))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            values = self.weight.numpy().copy()
            values[self.padding_idx] = 0.0
            init._fill(self.weight, values)

    def forward(self, index) -> Tensor:
        return F.embedding(index, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        extra = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{extra}"

    def get_config(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "padding_idx": self.padding_idx, "dtype": self.weight.dtype.name}


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size`` (the inverse of :class:`Flatten`).

    >>> Unflatten(1, (1, 8, 8))(fusion.zeros(5, 64)).shape
    (5, 1, 8, 8)
    """

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim = int(dim)
        self.unflattened_size = tuple(int(n) for n in unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = x._axis(self.dim)
        return x.reshape(*x.shape[:dim], *self.unflattened_size, *x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

    def get_config(self) -> dict:
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size)}
