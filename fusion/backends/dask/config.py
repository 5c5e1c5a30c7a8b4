"""Settings of the dask backend: read from the environment when the backend starts, and
changeable at run time with :func:`configure`.

This module does not import dask.

==============================  ===============================================================
``FUSION_DASK_SCHEDULER``       where work runs: ``auto`` (default): the ``distributed.Client``
                                the program has made, if there is one when a result is asked
                                for, else dask's local threaded scheduler; ``threads``,
                                ``processes`` or ``synchronous``: that local scheduler, even
                                when a client exists; an address (``tcp://host:8786``): a
                                client the backend connects to that scheduler itself
``FUSION_DASK_CHUNKS``          how arrays are cut along their first axis (the batch) when
                                they enter the backend (from numpy, ``full``, broadcasts):
                                ``auto`` (default): chunks of dask's ``array.chunk-size``
                                (128 MiB unless dask is configured otherwise); a size with a
                                unit (``16MiB``); or a number of rows (``64``). Other axes are
                                never cut
``FUSION_DASK_TIMEOUT``         seconds one computation may take before it is cancelled with
                                an error naming the cluster (default: no limit)
``FUSION_DASK_NO_WORKERS``      seconds a computation waits while the cluster has no worker
                                at all before it gives up with an error (default 30)
==============================  ===============================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

SCHEDULER_ENV = "FUSION_DASK_SCHEDULER"
CHUNKS_ENV = "FUSION_DASK_CHUNKS"
TIMEOUT_ENV = "FUSION_DASK_TIMEOUT"
NO_WORKERS_ENV = "FUSION_DASK_NO_WORKERS"

LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")


@dataclass(frozen=True)
class Settings:
    """The backend's settings (see the module's table)."""

    scheduler: str = "auto"
    chunks: str | int = "auto"
    timeout: float | None = None
    no_workers: float = 30.0

    def __post_init__(self) -> None:
        scheduler = self.scheduler
        if not (scheduler == "auto" or scheduler in LOCAL_SCHEDULERS or "://" in scheduler):
            raise ValueError(
                f"dask scheduler must be 'auto', one of {', '.join(LOCAL_SCHEDULERS)} or an "
                f"address such as 'tcp://host:8786', got {scheduler!r}")
        chunks = self.chunks
        if isinstance(chunks, bool) or not (
                chunks == "auto" or (isinstance(chunks, int) and chunks > 0)
                or (isinstance(chunks, str) and _is_size(chunks))):
            raise ValueError(f"dask chunks must be 'auto', a positive number of rows or a size "
                             f"such as '16MiB', got {chunks!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"dask timeout must be a positive number of seconds or None, "
                             f"got {self.timeout!r}")
        if not self.no_workers > 0:
            raise ValueError(f"dask no_workers must be a positive number of seconds, "
                             f"got {self.no_workers!r}")


def _is_size(text: str) -> bool:
    """Whether ``text`` is a byte size with a unit that dask understands (``"16MiB"``)."""
    from dask.utils import parse_bytes  # only called once the backend runs

    try:
        return parse_bytes(text) > 0
    except (ValueError, TypeError):
        return False


def _number(name: str, text: str) -> float | None:
    if text.lower() in ("", "none", "0"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {text!r}") from None


def from_environment(environ=os.environ) -> Settings:
    """The settings the environment variables give (defaults for those unset)."""
    chunks: str | int = environ.get(CHUNKS_ENV, "").strip() or "auto"
    if isinstance(chunks, str) and chunks.isdigit():
        chunks = int(chunks)
    no_workers = _number(NO_WORKERS_ENV, environ.get(NO_WORKERS_ENV, "").strip())
    return Settings(
        scheduler=environ.get(SCHEDULER_ENV, "").strip() or "auto",
        chunks=chunks,
        timeout=_number(TIMEOUT_ENV, environ.get(TIMEOUT_ENV, "").strip()),
        no_workers=Settings.no_workers if no_workers is None else no_workers,
    )


def updated(settings: Settings, **changes) -> Settings:
    """``settings`` with ``changes``; an unknown name is a TypeError listing the known ones."""
    known = {f.name for f in fields(Settings)}
    unknown = set(changes) - known
    if unknown:
        raise TypeError(f"unknown dask backend setting(s) {sorted(unknown)}; "
                        f"known: {sorted(known)}")
    return replace(settings, **changes)
