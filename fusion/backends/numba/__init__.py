"""The numba backend: every primitive as a JIT-compiled loop, parallel for large inputs.

Importing this module does not import numba; numba is imported when the backend is first
selected (``FUSION_BACKEND=numba``, ``fusion.set_backend("numba")``), and if it cannot be,
selecting the backend is an error that names the cause while the numpy backend still works.
"""

from fusion.core.markers import hookimpl

from .backend import NumbaBackend


@hookimpl
def fusion_register_backends(register) -> None:
    register("numba", NumbaBackend)


__all__ = ["NumbaBackend"]
