"""Parameter: a leaf tensor that a Module registers and an optimizer updates."""

from __future__ import annotations

from ..core.backend import Backend
from ..core.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad and that a :class:`Module` finds by attribute.

    Given a Tensor, the parameter shares its data (no copy); anything else is converted as
    :class:`fusion.Tensor` would. An optimizer updates it by replacing ``data`` with a new
    Buffer, so a tensor taken from it earlier (``state_dict()``, ``detach()``) keeps its values.

    >>> w = Parameter(fusion.zeros(2, 3))
    >>> w.requires_grad, w.shape
    (True, (2, 3))
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True, dtype=None,
                 backend: str | Backend | None = None):
        if data is None:
            data = Tensor([], dtype=dtype, backend=backend)
        if isinstance(data, Tensor):
            value = data.detach()
            if dtype is not None:
                value = value.cast(dtype).detach()
            if backend is not None:
                value = value.to(backend)
        else:
            value = Tensor(data, dtype=dtype, backend=backend)
        self.data = value.data  # shared with ``value``: no copy
        self.grad = None
        self._ctx = None
        self._op = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
