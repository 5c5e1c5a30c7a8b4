"""Fusion: a small tensor library with reverse-mode autograd and pluggable backends."""

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
from .core.markers import hookimpl

__version__ = "0.1.0"
