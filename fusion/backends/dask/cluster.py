"""Where the dask backend's work runs, and how a computation is waited for.

Under the ``auto`` scheduler a computation runs on the ``distributed.Client`` the program has
made, found when the computation starts (so a client made after the backend started is used),
else on dask's local scheduler. On a cluster, waiting is bounded: a computation that outlives
the backend's ``timeout``, or that waits ``no_workers`` seconds on a cluster without a single
worker, is cancelled with a :class:`~fusion.BackendError` naming the cluster, and so is one
whose worker died while running it (dask's ``KilledWorker``); the process never hangs there.
"""

from __future__ import annotations

import sys
import time

from fusion.core.backend import BackendError

from .config import LOCAL_SCHEDULERS, Settings

#: Seconds between two looks at the cluster while a computation runs.
POLL = 0.25
#: Graphs of more layers (about one per primitive) are computed as they are, unoptimised:
#: dask's blockwise fusion takes time that grows faster than the graph (seconds at a few
#: hundred layers), while for small graphs it saves tasks and the memory of intermediates.
OPTIMIZE_MAX_LAYERS = 64


def _optimize(arrays: list) -> bool:
    return sum(len(a.dask.layers) for a in arrays) <= OPTIMIZE_MAX_LAYERS


class Runner:
    """Computes and persists dask arrays where the settings say."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._own_client = None  # the client connected to an address given in the settings

    # --- where ---------------------------------------------------------------------------
    def client(self):
        """The ``distributed.Client`` to run on, or None for dask's local scheduler."""
        scheduler = self.settings.scheduler
        if scheduler in LOCAL_SCHEDULERS:
            return None
        if scheduler != "auto":
            return self._connect(scheduler)
        if "distributed" not in sys.modules:  # no client can exist without it being imported
            return None
        from distributed import default_client

        try:
            return default_client()
        except ValueError:
            return None

    def _connect(self, address: str):
        own = self._own_client
        if own is not None and own.status not in ("closed", "closing"):
            return own
        from distributed import Client

        try:
            self._own_client = Client(address, set_as_default=False, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise BackendError(f"dask backend: cannot reach the dask scheduler at {address} "
                               f"({type(exc).__name__}: {exc})") from exc
        return self._own_client

    def where(self, client=None) -> str:
        """Where computations run now, in words (for messages and ``fusion info``)."""
        client = self.client() if client is None else client
        if client is None:
            scheduler = self.settings.scheduler
            return f"dask's local {'threaded' if scheduler == 'auto' else scheduler} scheduler"
        return f"the dask cluster at {_address(client)}"

    def close(self) -> None:
        """Close the client this runner connected itself (not a client the program made)."""
        if self._own_client is not None:
            self._own_client.close()
            self._own_client = None

    # --- what ----------------------------------------------------------------------------
    def compute(self, arrays: list) -> list:
        """The numpy values of dask ``arrays``, computed together (shared work done once)."""
        client = self.client()
        if client is None:
            import dask

            return list(dask.compute(*arrays, optimize_graph=_optimize(arrays),
                                      **self._local()))
        futures = client.compute(list(arrays), optimize_graph=_optimize(arrays))
        self._wait(client, futures)
        try:
            return client.gather(futures)
        except Exception as exc:
            raise _translated(exc, client) from exc

    def persist(self, arrays: list) -> list:
        """``arrays`` computed and kept in memory (on the workers, on a cluster), as dask
        arrays whose graphs start from those results. On a cluster this returns at once;
        the work goes on, and a failure surfaces where the results are next used."""
        client = self.client()
        if client is None:
            import dask

            return list(dask.persist(*arrays, optimize_graph=_optimize(arrays),
                                      **self._local()))
        return client.persist(list(arrays), optimize_graph=_optimize(arrays))

    def _local(self) -> dict:
        scheduler = self.settings.scheduler
        return {} if scheduler == "auto" else {"scheduler": scheduler}

    def _wait(self, client, futures: list) -> None:
        """Wait for ``futures``; cancel them and raise BackendError on a timeout or on a
        cluster left without workers."""
        from distributed import wait

        settings = self.settings
        start = time.monotonic()
        no_workers_since = None
        while True:
            try:
                wait(futures, timeout=POLL)
                return
            except TimeoutError:
                pass
            except Exception as exc:
                raise _translated(exc, client) from exc
            now = time.monotonic()
            if settings.timeout is not None and now - start > settings.timeout:
                client.cancel(futures)
                raise BackendError(
                    f"dask backend: a computation on the cluster at {_address(client)} took "
                    f"longer than the backend's timeout of {settings.timeout:g} s and was "
                    "cancelled (raise it with FUSION_DASK_TIMEOUT or "
                    "fusion.backends.dask.configure(timeout=...))")
            try:
                workers = len(client.nthreads())
            except Exception as exc:
                raise _translated(exc, client) from exc
            if workers:
                no_workers_since = None
                continue
            no_workers_since = no_workers_since or now
            if now - no_workers_since > settings.no_workers:
                client.cancel(futures)
                raise BackendError(
                    f"dask backend: the cluster at {_address(client)} has had no worker for "
                    f"{settings.no_workers:g} s, so the computation was cancelled (did the "
                    "workers die? FUSION_DASK_NO_WORKERS sets how long to wait for one)")


def _address(client) -> str:
    try:
        return str(client.scheduler.address)
    except AttributeError:
        return repr(client)


def _translated(exc: Exception, client) -> Exception:
    """A clear BackendError for the cluster failing; any other error (the user's) as it is."""
    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    if isinstance(exc, KilledWorker):
        return BackendError(
            f"dask backend: a worker of the cluster at {_address(client)} died while running "
            f"this computation, which was given up ({type(exc).__name__}: {exc})")
    if isinstance(exc, CommClosedError):
        return BackendError(
            f"dask backend: lost the connection to the cluster at {_address(client)} "
            f"({type(exc).__name__}: {exc})")
    return exc
