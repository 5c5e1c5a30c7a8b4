"""Weight initialisation, in place, with the published formulas.

Every function gives the tensor a new data buffer (no graph is recorded) and returns it. Random
numbers come from Fusion's generator (:func:`fusion.manual_seed`), drawn on the host in float64
and cast, so one seed gives the same weights on every backend.

Fans follow the usual convention for a weight of shape ``(out, in, *kernel)``: fan_in is
``in * prod(kernel)``, fan_out is ``out * prod(kernel)``; a 1-D tensor has fan_in = fan_out =
its length.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import numpy as np

from ..core import random as _rng
from ..core.tensor import Tensor

#: Off while a saved model is rebuilt: its weights are about to be replaced, so drawing them
#: would only cost time (and memory, for a file that claims a huge layer).
_init_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fusion_init_enabled", default=True)


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Within the block, every init function leaves its tensor as it is (used by
    :func:`fusion.load`, which overwrites the weights it builds)."""
    token = _init_enabled.set(False)
    try:
        yield
    finally:
        _init_enabled.reset(token)


_GAINS = {
    "linear": 1.0, "identity": 1.0, "sigmoid": 1.0,
    "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
    "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 3.0 / 4.0,
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which to scale a layer's std so that activations keep their variance.

    ``leaky_relu`` takes its negative slope as ``param`` (default 0.01): sqrt(2 / (1 + a^2)).

    >>> calculate_gain("relu")
    1.4142135623730951
    """
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity not in _GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected one of "
                         f"{sorted([*_GAINS, 'leaky_relu'])}")
    return _GAINS[nonlinearity]


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel).

    >>> calculate_fan_in_and_fan_out(fusion.zeros(4, 3))
    (3, 4)
    """
    shape = tensor.shape
    if len(shape) == 0:
        raise ValueError("fans are not defined for a 0-d tensor")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', not {mode!r}")


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    if not _init_enabled.get():
        return tensor
    if not tensor.dtype.is_float:
        raise TypeError(f"initialising a {tensor.dtype.name} tensor; expected a float tensor")
    array = np.asarray(np.broadcast_to(values, tensor.shape), dtype=tensor.dtype.np, order="C")
    # new data replaces the old: nothing that shares the old data sees the change
    tensor.assign(Tensor(array, dtype=tensor.dtype, backend=tensor.backend))
    return tensor


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill with ``value``.

    >>> constant_(fusion.zeros(2), 0.5).tolist()
    [0.5, 0.5]
    """
    return _fill(tensor, np.asarray(value, dtype=np.float64))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0. ``zeros_(layer.bias)``"""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1. ``ones_(norm.weight)``"""
    return constant_(tensor, 1.0)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Draw from U(a, b).

    >>> w = uniform_(fusion.zeros(3, 3), -0.1, 0.1)
    """
    if not a <= b:
        raise ValueError(f"uniform_ needs a <= b, got a={a}, b={b}")
    if not _init_enabled.get():
        return tensor
    return _fill(tensor, _rng.generator().uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Draw from N(mean, std^2).

    >>> w = normal_(fusion.zeros(3, 3), std=0.02)
    """
    if std < 0:
        raise ValueError(f"normal_ needs std >= 0, got {std}")
    if not _init_enabled.get():
        return tensor
    return _fill(tensor, _rng.generator().normal(mean, std, tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot and Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    >>> w = xavier_uniform_(fusion.zeros(4, 3), gain=calculate_gain("tanh"))
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot and Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).

    >>> w = xavier_normal_(fusion.zeros(4, 3))
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan), gain from ``nonlinearity``
    (``a`` is leaky_relu's negative slope; the defaults give ReLU's gain sqrt(2)).

    >>> w = kaiming_uniform_(fusion.zeros(4, 3), nonlinearity="relu")
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """He et al. (2015): N(0, std^2) with std = gain / sqrt(fan).

    >>> w = kaiming_normal_(fusion.zeros(4, 3), mode="fan_out", nonlinearity="relu")
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def he_uniform_(tensor: Tensor, mode: str = "fan_in") -> Tensor:
    """:func:`kaiming_uniform_` for ReLU layers: U(-b, b), b = sqrt(6 / fan).

    >>> w = he_uniform_(fusion.zeros(4, 3))
    """
    return kaiming_uniform_(tensor, 0.0, mode, "relu")


def he_normal_(tensor: Tensor, mode: str = "fan_in") -> Tensor:
    """:func:`kaiming_normal_` for ReLU layers: N(0, 2 / fan).

    >>> w = he_normal_(fusion.zeros(4, 3))
    """
    return kaiming_normal_(tensor, 0.0, mode, "relu")


# the names used by Keras and in papers
he_uniform = he_uniform_
he_normal = he_normal_
glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
