"""The numba backend: every primitive as a JIT-compiled loop, parallel for large inputs.

Select it with ``FUSION_BACKEND=numba``, ``fusion.set_backend("numba")`` or
``with fusion.use_backend("numba"):``. Its arrays are numpy arrays.

Importing this module does not import numba: the registry imports every plugin on first use
of any backend, and numba (0.2 s) is imported only when this backend is first selected. If
numba cannot be imported, selecting the backend is an error naming the cause, and the numpy
backend still works.

Kernels are compiled on first use of each (primitive, dtype) pair and cached on disk, so a
second process loads them in milliseconds. The cache directory is ``FUSION_NUMBA_CACHE_DIR``,
else ``NUMBA_CACHE_DIR``, else numba's default (``__pycache__`` beside the kernels, or a
per-user cache directory where that is read-only); under pytest-xdist every worker uses a
subdirectory of its own. Threads: ``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``, and the
policy that keeps numba's and BLAS's threads apart is described in :mod:`.threads`. Every
setting is listed in :mod:`.config`; the design and measured figures are in docs/numba.md.

Modules: :mod:`.backend` (the Backend class: layout, allocation, kernel choice),
:mod:`.kernels` (the loops), :mod:`.vecmath` (vectorisable exp, log, maximum),
:mod:`.options` (compile options), :mod:`.config`, :mod:`.threads`, :mod:`.pool`.
"""

from fusion.core.markers import hookimpl

from .backend import NumbaBackend


@hookimpl
def fusion_register_backends(register) -> None:
    """Register the numba backend (instantiated, and numba imported, on first selection)."""
    register("numba", NumbaBackend)


__all__ = ["NumbaBackend"]
