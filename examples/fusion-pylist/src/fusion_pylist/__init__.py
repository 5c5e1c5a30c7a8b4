"""fusion-pylist: a Fusion backend on flat lists of Python numbers.

Installed, it is found through the entry point in its ``pyproject.toml``; select it with
``FUSION_BACKEND=pylist``, ``fusion.set_backend("pylist")`` or ``backend="pylist"``.
This module is the whole plugin: one hook that hands Fusion the backend class.
"""

from importlib.metadata import PackageNotFoundError, version

from fusion import hookimpl

from .backend import ListArray, PyListBackend

try:
    __version__ = version("fusion-pylist")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"


@hookimpl
def fusion_register_backends(register):
    register("pylist", PyListBackend, version=__version__)


__all__ = ["ListArray", "PyListBackend", "fusion_register_backends"]
