"""Activation functions as modules, so that they can sit in a Sequential."""

from __future__ import annotations

from ..core.tensor import Tensor
from . import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0).

    >>> ReLU()(fusion.Tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()

    def get_config(self) -> dict:
        return {}


class LeakyReLU(Module):
    """x for x >= 0, ``negative_slope * x`` below.

    >>> LeakyReLU(0.1)(fusion.Tensor([-1.0, 2.0])).tolist()
    [-0.10000000149011612, 2.0]
    """

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    def get_config(self) -> dict:
        return {"negative_slope": self.negative_slope}


class Sigmoid(Module):
    """1 / (1 + e^-x).

    >>> Sigmoid()(fusion.Tensor([0.0])).tolist()
    [0.5]
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()

    def get_config(self) -> dict:
        return {}


class Tanh(Module):
    """The hyperbolic tangent.

    >>> Tanh()(fusion.Tensor([0.0])).tolist()
    [0.0]
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()

    def get_config(self) -> dict:
        return {}


class GELU(Module):
    """The Gaussian error linear unit x * Phi(x) (Hendrycks and Gimpel, 2016).

    ``approximate="tanh"`` (the default, as :func:`fusion.nn.functional.gelu` and
    ``Tensor.gelu``) uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); ``"none"`` uses
    the error function (PyTorch's default), to within 1.5e-7.

    >>> round(GELU()(fusion.Tensor([1.0])).item(), 3)
    0.841
    """

    def __init__(self, approximate: str = "tanh"):
        super().__init__()
        if approximate not in ("tanh", "none"):
            raise ValueError(f"approximate must be 'tanh' or 'none', not {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return x.gelu() if self.approximate == "tanh" else F.gelu_exact(x)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"

    def get_config(self) -> dict:
        return {"approximate": self.approximate}


class Softmax(Module):
    """e^x / sum(e^x) along ``axis``, stable for large scores.

    >>> Softmax()(fusion.Tensor([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"

    def get_config(self) -> dict:
        return {"axis": self.axis}


class LogSoftmax(Module):
    """x - logsumexp(x) along ``axis``: log-probabilities for :class:`NLLLoss`.

    >>> round(LogSoftmax()(fusion.Tensor([[0.0, 0.0]]))[0, 0].item(), 4)
    -0.6931
    """

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"

    def get_config(self) -> dict:
        return {"axis": self.axis}
