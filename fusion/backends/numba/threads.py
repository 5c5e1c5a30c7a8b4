"""How numba's threads and BLAS's threads share the cores (placeholder, being measured)."""

from __future__ import annotations

import contextlib


def apply_policy() -> None:
    pass


def blas_region():
    return contextlib.nullcontext()
