"""Fusion: a small tensor library with reverse-mode autograd and pluggable backends.

>>> import fusion
>>> x = fusion.Tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
Tensor([2., 4., 6.], shape=(3,), dtype=float32, backend=numpy)
"""

from .core.backend import (
    Backend,
    BackendError,
    BackendNotFoundError,
    BackendRegistrationError,
    available_backends,
    backend_info,
    get_backend,
    set_backend,
    use_backend,
)
from .core.dtypes import DType, bool_, float32, float64, int32, int64
from .core.grad_mode import enable_grad, is_grad_enabled, no_grad
from .core.gradcheck import GradcheckError, gradcheck
from .core.lazy import eager, lazy_enabled
from .core.markers import hookimpl
from .core.random import manual_seed
from .core.tensor import (
    Tensor,
    arange,
    broadcast_shape,
    cat,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    maximum,
    minimum,
    normal,
    ones,
    ones_like,
    persist,
    rand,
    randint,
    randn,
    realize,
    stack,
    tensor,
    uniform,
    where,
    zeros,
    zeros_like,
)

bool = bool_  # noqa: A001  (fusion.bool, as torch.bool)

__version__ = "0.1.0"

__all__ = [
    "arange",
    "available_backends",
    "Backend",
    "backend_info",
    "BackendError",
    "BackendNotFoundError",
    "BackendRegistrationError",
    "bool_",
    "broadcast_shape",
    "cat",
    "DType",
    "eager",
    "enable_grad",
    "eye",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "get_backend",
    "gradcheck",
    "GradcheckError",
    "hookimpl",
    "int32",
    "int64",
    "is_grad_enabled",
    "jit",
    "lazy_enabled",
    "linspace",
    "manual_seed",
    "maximum",
    "minimum",
    "no_grad",
    "normal",
    "ones",
    "ones_like",
    "persist",
    "rand",
    "randint",
    "randn",
    "set_backend",
    "realize",
    "stack",
    "tensor",
    "Tensor",
    "uniform",
    "use_backend",
    "where",
    "zeros",
    "zeros_like",
]

_SUBMODULES = {"nn", "optim", "data", "datasets", "metrics", "train", "viz", "testing"}
#: Functions of submodules offered at the top (fusion.save, fusion.load), loaded on first use.
_LAZY_ATTRIBUTES = {
    "save": "nn.serialization",
    "load": "nn.serialization",
    "save_state_dict": "nn.serialization",
    "load_state_dict": "nn.serialization",
    "FusionSerializationError": "nn.serialization",
}


def __getattr__(name):
    # Submodules load on first use, so that `import fusion` stays light.
    if name == "jit":
        from .replay import jit

        return jit
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_ATTRIBUTES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY_ATTRIBUTES[name]}"), name)
    raise AttributeError(f"module 'fusion' has no attribute {name!r}")
