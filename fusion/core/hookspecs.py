"""The hooks a Fusion plugin may implement.

A plugin is a module (or object) named by an entry point in the group ``fusion.backends``::

    [project.entry-points."fusion.backends"]
    mybackend = "mypackage.fusion_plugin"

whose hook implementations are marked with ``fusion.hookimpl``.
"""

from __future__ import annotations

from collections.abc import Callable

from .markers import hookspec


@hookspec
def fusion_register_backends(register: Callable[..., None]) -> None:
    """Hand Fusion the backends this plugin provides.

    :param register: call ``register(name, backend, *, aliases=(), version=None)`` once per
        backend. ``name`` is what users select (``FUSION_BACKEND=name``); ``backend`` is a
        :class:`fusion.Backend` subclass (instantiated lazily, on first use) or an instance;
        ``aliases`` are further names for it; ``version`` is shown by ``fusion.backend_info()``
        and defaults to the backend's ``version`` attribute, else to the version of the
        plugin's distribution. Fusion checks the backend
        here: a missing primitive, a taken name or a built-in name is refused with an error
        naming the plugin.
    """
