"""Settings of the numba backend, read from the environment when the backend starts.

This module does not import numba; :func:`load_kernels` does, on the backend's first use.

=============================  ================================================================
``FUSION_NUMBA_CACHE_DIR``     where compiled kernels are cached; default: ``NUMBA_CACHE_DIR``
                               if set, else numba's own default (``__pycache__`` next to the
                               kernels, or a per-user cache directory when that is read-only)
``FUSION_NUMBA_PARALLEL_MIN``  elements from which a kernel runs on all numba threads
                               (default 262144); smaller work runs serially, on the caller
``FUSION_NUMBA_FUSE_MIN``      elements from which an elementwise kernel of the lazy schedule
                               is compiled whole (default 32768); smaller kernels run their
                               primitives one by one
``FUSION_NUMBA_NUMPY_BELOW``   elements below which a primitive is one numpy call rather than a
                               numba kernel (default 4096): the same results, and numpy's
                               dispatch costs less than a kernel's at that size
``FUSION_NUMBA_BLAS_THREADS``  BLAS threads in matmul: ``auto`` (default), ``keep`` or a
                               count (see :mod:`.threads`)
``FUSION_NUMBA_POOL_MB``       memory kept for reusing large outputs (default 512, 0: off;
                               see :mod:`.pool`)
``NUMBA_NUM_THREADS``          numba's thread count (also ``numba.set_num_threads`` at run time)
``OMP_WAIT_POLICY``            set to ``PASSIVE`` by the backend unless already set
``PYTEST_XDIST_WORKER``        set by pytest-xdist: each worker gets its own cache subdirectory
=============================  ================================================================
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import ModuleType

CACHE_DIR_ENV = "FUSION_NUMBA_CACHE_DIR"
PARALLEL_MIN_ENV = "FUSION_NUMBA_PARALLEL_MIN"
DEFAULT_PARALLEL_MIN = 1 << 18
FUSE_MIN_ENV = "FUSION_NUMBA_FUSE_MIN"
DEFAULT_FUSE_MIN = 1 << 15
NUMPY_BELOW_ENV = "FUSION_NUMBA_NUMPY_BELOW"
DEFAULT_NUMPY_BELOW = 1 << 12


def cache_dir(environ: dict | os._Environ = os.environ) -> str | None:
    """The directory the kernels are cached in, or None for numba's default location.

    Parallel test workers (pytest-xdist sets ``PYTEST_XDIST_WORKER``) each get a subdirectory
    of their own, so that two processes never write one cache index at the same time.

    >>> cache_dir({"FUSION_NUMBA_CACHE_DIR": "/tmp/k", "PYTEST_XDIST_WORKER": "gw1"})
    '/tmp/k/gw1'
    """
    base = environ.get(CACHE_DIR_ENV) or environ.get("NUMBA_CACHE_DIR") or None
    worker = environ.get("PYTEST_XDIST_WORKER")
    if worker:
        base = base or str(Path(tempfile.gettempdir()) / "fusion-numba-cache")
        return str(Path(base) / worker)
    return base


def parallel_min(environ: dict | os._Environ = os.environ) -> int:
    """The number of elements from which kernels run in parallel."""
    return _integer(environ, PARALLEL_MIN_ENV, DEFAULT_PARALLEL_MIN)


def fuse_min(environ: dict | os._Environ = os.environ) -> int:
    """The number of elements from which an elementwise kernel is compiled whole (below it,
    its primitives run one by one: a compilation would cost more than it saves)."""
    return _integer(environ, FUSE_MIN_ENV, DEFAULT_FUSE_MIN)


def numpy_below(environ: dict | os._Environ = os.environ) -> int:
    """The number of elements below which a primitive runs as one numpy call (see
    :class:`~.backend.NumbaBackend`); 0 runs every primitive as a numba kernel."""
    return _integer(environ, NUMPY_BELOW_ENV, DEFAULT_NUMPY_BELOW)


def _integer(environ, name: str, default: int) -> int:
    """The integer setting ``name`` of ``environ``, ``default`` when unset or empty."""
    value = environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def load_kernels() -> ModuleType:
    """Import numba and the kernels, caching them in :func:`cache_dir`.

    numba fixes a function's cache location when the function is decorated, so the directory
    is set only while the kernel modules are imported; numba code outside Fusion keeps its own.
    """
    from numba.core import config as numba_config

    directory = cache_dir()
    previous = numba_config.CACHE_DIR
    if directory is not None:
        numba_config.CACHE_DIR = directory
    try:
        from . import kernels
    finally:
        numba_config.CACHE_DIR = previous
    return kernels
