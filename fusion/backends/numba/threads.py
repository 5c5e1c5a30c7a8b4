"""How numba's threads and BLAS's threads share the cores.

Both pools want every core. Left alone, numba's OpenMP threads spin after each parallel kernel
and OpenBLAS's threads spin after each multi-threaded matmul, each pool stealing the cores the
other needs next: on a shared 2-core machine, a step mixing two BLAS products with parallel
kernels took 8 to 120 ms instead of 1 to 2 ms with the policy below
(``python benchmarks/backends.py --only clash``; figures in docs/numba.md).

The policy, applied when the backend starts:

1. ``OMP_WAIT_POLICY=PASSIVE`` (unless the variable is already set): numba's OpenMP threads
   sleep as soon as a kernel ends instead of spinning. It costs some tens of microseconds per
   parallel launch, which is why only work above ``FUSION_NUMBA_PARALLEL_MIN`` elements runs in
   parallel. It takes effect only if no OpenMP runtime was loaded before numba's first parallel
   kernel (another library that loaded libgomp first keeps its own setting).
2. Once numba's thread pool has started (a parallel kernel ran), the contraction (matmul
   through BLAS) runs single-threaded unless the product is large
   (``FUSION_NUMBA_BLAS_THREADS``): ``auto`` (default) gives BLAS one thread below
   :data:`BLAS_PARALLEL_MIN` multiply-adds per matrix and all of its threads above, where the
   product is long enough to amortise waking them; before any parallel kernel, BLAS keeps its
   threads: nothing of the backend's competes for the cores (a jitted training step at batch
   128, whose fused kernels all run serially, took 1.2 ms with two BLAS threads against 1.9 ms
   with one, on a 2-core machine at load 3; a heavily loaded machine favours one thread, where
   ``FUSION_NUMBA_BLAS_THREADS=1`` helps). An integer fixes the count; ``keep`` leaves BLAS
   as it is. BLAS's thread count is restored after each call, so numpy code
   elsewhere in the process is unaffected. Controlling BLAS needs ``threadpoolctl``; without
   it, BLAS keeps its own threads.

numba's own thread count is honoured throughout: ``NUMBA_NUM_THREADS`` at start-up,
``numba.set_num_threads`` at run time; with one thread every kernel runs serially.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

BLAS_THREADS_ENV = "FUSION_NUMBA_BLAS_THREADS"
#: Multiply-adds per matrix from which ``auto`` lets BLAS use all of its threads (512**3).
BLAS_PARALLEL_MIN = 1 << 27
#: OpenBLAS runs products below this many multiply-adds on one thread by itself.
_BLAS_SINGLE_BELOW = 1 << 18

_blas = None  # the threadpoolctl controllers of the BLAS libraries, once looked up
_blas_looked_up = False
_started = False  # numba's thread pool, once seen started
# Several Python threads may multiply at once: the first to enter a limited region saves
# BLAS's thread counts, the last to leave restores them.
_lock = threading.Lock()
_depth = 0
_saved: list[int] = []


def apply_policy() -> None:
    """Make numba's OpenMP threads wait passively (see the module docstring)."""
    from numba.np.ufunc import parallel

    if "OMP_WAIT_POLICY" not in os.environ and not parallel._is_initialized:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def blas_setting(environ=os.environ) -> str | int:
    """``"auto"``, ``"keep"`` or a thread count, from ``FUSION_NUMBA_BLAS_THREADS``."""
    value = environ.get(BLAS_THREADS_ENV, "auto").strip().lower() or "auto"
    if value in ("auto", "keep"):
        return value
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(
            f"{BLAS_THREADS_ENV} must be auto, keep or a positive integer, got {value!r}"
        )
    return count


def _blas_controller():
    global _blas, _blas_looked_up
    if not _blas_looked_up:
        _blas_looked_up = True
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        _blas = controllers or None
    return _blas


def blas_threads_for(macs: int, setting: str | int = "auto") -> int | None:
    """The BLAS thread count the policy wants for a product of ``macs`` multiply-adds per
    matrix, or None to leave BLAS as it is."""
    if setting == "keep" or macs < _BLAS_SINGLE_BELOW:
        return None  # OpenBLAS runs such small products on one thread by itself
    if setting == "auto":
        if macs >= BLAS_PARALLEL_MIN or not numba_threads_started():
            return None
        return 1
    return setting


def numba_threads_started() -> bool:
    """Whether numba's thread pool exists (a parallel kernel ran in this process)."""
    global _started
    if not _started:
        from numba.np.ufunc import parallel

        _started = getattr(parallel, "_is_initialized", True)  # once started, it stays
    return _started


@contextlib.contextmanager
def blas_limit(count: int) -> Iterator[None]:
    """Run the block with BLAS on ``count`` threads, restoring its count afterwards."""
    controllers = _blas_controller()
    if not controllers:
        yield
        return
    _enter(controllers, count)
    try:
        yield
    finally:
        _leave(controllers)


def _enter(controllers, want: int) -> None:
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = [c.num_threads for c in controllers]
        _depth += 1
        for c in controllers:
            c.set_num_threads(want)


def _leave(controllers) -> None:
    global _depth
    with _lock:
        _depth -= 1
        if _depth == 0:
            for c, n in zip(controllers, _saved, strict=True):
                c.set_num_threads(n)
