"""Telling the user when numba compiles: one line before the first compile, and the time spent.

numba compiles a kernel the first time it meets a new (primitive, dtype) pair and caches it on
disk, so a first run pays seconds that later runs do not. numba broadcasts a
``"numba:compile"`` event around every real compile (a kernel loaded from the cache sends
none); the listener here prints one line on standard error when the first compile of the
process starts and adds up the seconds spent compiling (a compile nested inside another, a
parallel driver compiling its serial kernel, counts once), which :func:`fusion.train.fit`
leaves out of its epoch times and reports beside them.

``FUSION_NUMBA_QUIET=1`` turns the line off.
"""

from __future__ import annotations

import os
import sys
import threading
import time

MESSAGE = ("fusion: compiling kernels for the numba backend (first run only: later runs "
           "load them from the cache) ...")

_lock = threading.Lock()
_state = {"seconds": 0.0, "depth": 0, "started": 0.0, "announced": False, "installed": False}


def compile_seconds() -> float:
    """Seconds this process has spent compiling numba kernels (0 while none was compiled)."""
    with _lock:
        running = time.perf_counter() - _state["started"] if _state["depth"] else 0.0
        return _state["seconds"] + running


def _started() -> None:
    with _lock:
        _state["depth"] += 1
        if _state["depth"] > 1:
            return
        _state["started"] = time.perf_counter()
        announce = not _state["announced"] and os.environ.get("FUSION_NUMBA_QUIET") != "1"
        _state["announced"] = True
    if announce:
        print(MESSAGE, file=sys.stderr, flush=True)


def _ended() -> None:
    with _lock:
        _state["depth"] = max(_state["depth"] - 1, 0)
        if _state["depth"] == 0:
            _state["seconds"] += time.perf_counter() - _state["started"]


def install() -> None:
    """Listen to numba's compile events (once per process; imports numba)."""
    from numba.core import event

    with _lock:
        if _state["installed"]:
            return
        _state["installed"] = True

    class Listener(event.Listener):
        def on_start(self, ev) -> None:
            _started()

        def on_end(self, ev) -> None:
            _ended()

    event.register("numba:compile", Listener())
