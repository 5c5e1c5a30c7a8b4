"""Whether operations record a graph: a context variable, safe across threads and tasks."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_grad_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fusion_grad_enabled", default=True)


def is_grad_enabled() -> bool:
    return _grad_enabled.get()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within the block, results record no graph and require no gradient::

        with fusion.no_grad():
            prediction = model(x)
    """
    token = _grad_enabled.set(False)
    try:
        yield
    finally:
        _grad_enabled.reset(token)


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Turn graph recording back on inside a ``no_grad`` block."""
    token = _grad_enabled.set(True)
    try:
        yield
    finally:
        _grad_enabled.reset(token)
