"""Reuse of large output arrays, to avoid page faults on every fresh allocation.

A fresh array above glibc's largest mmap threshold (32 MB) is a new mapping each time: the
first write to each page faults, and filling a new 40 MB array costs about twice as much as
refilling an old one. Smaller arrays fare little better in a training step: from 128 KB
(glibc's initial mmap threshold) they are mapped fresh or, once malloc raises that threshold,
their memory is trimmed back to the system when the step frees them, and faulted in again
next step. An Adam kernel over an 800 KB parameter took 0.4-0.5 ms that way and 0.1 ms in
reused memory (MNIST MLP step, ``FUSION_DEBUG=1``).

The pool keeps blocks after use and hands a block out again once nothing refers to it any
more: every array the backend returns is a view of its block, and numpy views hold a
reference to the array that owns the memory, so a block whose reference count is back to the
pool's own references is free. A reused block is therefore exactly as private as a fresh
allocation.

Only blocks of at least :data:`MIN_BYTES` are pooled, at most ``FUSION_NUMBA_POOL_MB`` in all
(default 512; 0 turns the pool off). Without a GIL (free-threaded Python) reference counts
are not a safe signal and the pool is off.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

POOL_ENV = "FUSION_NUMBA_POOL_MB"
DEFAULT_POOL_MB = 512
#: Arrays from this size are pooled. From 128 KB (glibc's initial mmap threshold) malloc does
#: not reliably reuse memory either, but the pool keeps every block it ever made (up to its
#: limit), so it starts a step above, where the page faults cost most.
MIN_BYTES = 1 << 18


class BufferPool:
    """Blocks of raw bytes keyed by size; :meth:`empty` returns a 1-D array in a free one."""

    def __init__(self, limit_bytes: int) -> None:
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        self.limit = limit_bytes if gil else 0
        #: Smaller arrays are left to malloc (:meth:`empty` allocates them fresh).
        self.min_bytes = MIN_BYTES if self.limit else 1 << 62
        self.held = 0
        self._blocks: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()  # a free block must go to one caller only
        # The reference count of a block that nobody but the pool holds, measured the way
        # empty() measures it (the count differs between Python versions).
        self._free_refs = self._refs([np.empty(1, np.uint8)], 0)

    @classmethod
    def from_environment(cls) -> BufferPool:
        value = os.environ.get(POOL_ENV, "")
        try:
            megabytes = float(value) if value else DEFAULT_POOL_MB
        except ValueError:
            raise ValueError(f"{POOL_ENV} must be a number of megabytes, got {value!r}") from None
        return cls(int(megabytes * (1 << 20)))

    @staticmethod
    def _refs(blocks: list[np.ndarray], i: int) -> int:
        return sys.getrefcount(blocks[i])

    def empty(self, n: int, dtype) -> np.ndarray:
        """An uninitialised 1-D array of ``n`` elements of ``dtype``."""
        dtype = np.dtype(dtype)
        nbytes = n * dtype.itemsize
        if nbytes < self.min_bytes:
            return np.empty(n, dtype)
        with self._lock:
            blocks = self._blocks.setdefault(nbytes, [])
            for i in range(len(blocks)):
                if self._refs(blocks, i) <= self._free_refs:
                    return blocks[i].view(dtype)
            block = np.empty(nbytes, np.uint8)
            if self.held + nbytes <= self.limit:
                blocks.append(block)
                self.held += nbytes
            return block.view(dtype)

    def clear(self) -> None:
        """Drop every block (memory in use by live arrays stays with them)."""
        self._blocks.clear()
        self.held = 0
