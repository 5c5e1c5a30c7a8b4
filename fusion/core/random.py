"""The random number generator behind rand, randn, init functions and shuffling.

Numbers are drawn on the host with numpy's PCG64 generator and then moved to the backend, so
one seed gives the same numbers on every backend.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed Fusion's generator: the numbers that follow are the same on every run and backend."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    return _generator


def draw(kind: str, params: tuple, shape: tuple[int, ...], dtype) -> tuple[np.ndarray]:
    """One array of ``shape`` and numpy ``dtype`` from the generator's method ``kind``
    (``"random"``, ``"standard_normal"``, ``"uniform"``, ``"normal"``, ``"integers"``) with
    ``params`` before the shape, as a 1-tuple (the form of a host value)."""
    method = getattr(_generator, kind)
    if kind in ("random", "standard_normal"):
        array = method(shape, dtype=dtype)
    elif kind == "integers":
        array = method(*params, shape, dtype=dtype)
    else:
        array = method(*params, shape)
    return (np.asarray(array, dtype=dtype),)
