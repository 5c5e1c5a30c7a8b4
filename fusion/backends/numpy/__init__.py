"""The numpy backend: each primitive is one numpy call; movement primitives return views."""

from fusion.core.markers import hookimpl

from .backend import NumpyBackend


@hookimpl
def fusion_register_backends(register):
    register("numpy", NumpyBackend, aliases=("np",))


__all__ = ["NumpyBackend"]
