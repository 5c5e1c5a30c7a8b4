"""When work runs: lazily (the default where a backend gains from it) or at once.

``FUSION_LAZY=0`` in the environment, or ``with fusion.eager():`` in code, makes every
primitive run the moment it is called, as a debugging aid: an error of a backend then points at
the line that asked for the op. A backend that gains nothing from laziness (it runs primitives
one by one on arrays whose movement ops are free views anyway, as the numpy backend does)
declares ``lazy = False`` and always runs eagerly.

``FUSION_DEBUG=1`` prints each kernel as it runs (name, shape, time, bandwidth); ``2`` also
prints its description, and a backend that generates code (numba) prints the source of each
kernel the first time a process compiles or loads it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass

_OFF = ("0", "false", "off", "no")
_lazy: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fusion_lazy", default=os.environ.get("FUSION_LAZY", "1").strip().lower() not in _OFF)


def lazy_enabled() -> bool:
    """Whether backends that support laziness record work instead of running it now."""
    return _lazy.get()


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Within the block, every primitive runs when it is called (no laziness)::

        with fusion.eager():
            y = (x * 2).exp()   # computed here, on every backend
    """
    token = _lazy.set(False)
    try:
        yield
    finally:
        _lazy.reset(token)


def debug_level() -> int:
    """``FUSION_DEBUG`` as a number (0 when unset or not a number)."""
    try:
        return int(os.environ.get("FUSION_DEBUG", "0") or 0)
    except ValueError:
        return 0


@dataclass
class Stats:
    """What realisations have run since the last :meth:`reset`: kernels, bytes they read and
    wrote (each input and output once), and primitives run one by one."""

    kernels: int = 0
    bytes: int = 0
    primitives: int = 0
    #: While true, every realisation is scheduled into kernels (and counted), even on a
    #: backend that runs primitives one by one.
    tracking: bool = False

    def reset(self) -> None:
        self.kernels = self.bytes = self.primitives = 0


#: Counters of the whole process, for benchmarks and tests.
stats = Stats()
