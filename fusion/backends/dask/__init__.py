"""The dask backend: every primitive on ``dask.array``, so that a Fusion program, autograd
included, becomes a dask graph that runs on a cluster or out of core.

Install it with ``pip install 'fusion[dask]'`` and select it like any backend
(``FUSION_BACKEND=dask``, ``fusion.set_backend("dask")``, ``with fusion.use_backend("dask"):``).
Work runs on the ``distributed.Client`` the program has made, if there is one, else on dask's
local scheduler; results are computed when asked for (``numpy()``, ``item()``, printing), and
an optimizer step keeps parameters and optimizer state on the workers (``persist``), so a
training loop's graph does not grow. Settings are listed in :mod:`.config` and changed with
:func:`configure`; docs/dask.md explains when the backend is worth it.

Importing this module does not import dask: the registry imports every plugin on first use of
any backend, and dask (about 0.6 s) is imported only when this backend is first selected. If
dask is missing, that selection is an error saying which extra to install.

Modules: :mod:`.backend` (the Backend class), :mod:`.blocks` (the numpy functions the workers
run), :mod:`.cluster` (where work runs, waiting with timeouts), :mod:`.config` (settings).
"""

from __future__ import annotations

from fusion.core.markers import hookimpl

from .backend import DaskBackend
from .config import Settings


@hookimpl
def fusion_register_backends(register) -> None:
    """Register the dask backend (instantiated, and dask imported, on first selection)."""
    register("dask", DaskBackend)


def configure(**changes) -> Settings:
    """Change the dask backend's settings from now on and return the previous ones.

    ``scheduler``, ``chunks``, ``timeout`` and ``no_workers`` are described in
    :mod:`fusion.backends.dask.config`; the environment variables give their initial values.

    >>> old = fusion.backends.dask.configure(chunks=64, scheduler="synchronous")
    >>> fusion.backends.dask.configure(**vars(old))  # back as before
    """
    import fusion

    return fusion.get_backend("dask").configure(**changes)


__all__ = ["DaskBackend", "Settings", "configure"]
