"""Kernels, passes over memory and time of three elementwise-heavy workloads.

For each workload (``((x*2+1).exp()*x).sum()`` and the tanh form of gelu on 1e7 float32
values, a row softmax of 10000x1000) this prints:

* passes over memory: the primitives that run one by one (each reads its inputs and writes
  its output once) against the kernels of the lazy schedule for a backend that fuses (each
  is one pass), with the bytes those kernels move;
* the median time of each contender: hand-written numpy, a hand-written fused numba loop (one
  parallel loop per pass, using the numba backend's vectorisable exp; when numba is
  installed), Fusion on the numpy backend (eager), Fusion on each lazy backend, lazily and
  under ``fusion.eager()``.

    python benchmarks/fusion.py                 # the sizes above
    python benchmarks/fusion.py --scale 0.1     # a tenth of the elements, for a quick look

The numba backend compiles kernels of 32768 elements or more whole, a trailing sum or max
included (see fusion/backends/numba/fuse.py).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

# This script is named like the package it measures. Its own folder leaves the import path;
# and when a neighbouring script (whose folder is on the path) imports ``fusion`` and gets this
# file, it hands over to the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if __name__ == "fusion":
    import importlib

    del sys.modules["fusion"]
    sys.modules["fusion"] = importlib.import_module("fusion")

import numpy as np  # noqa: E402

import fusion  # noqa: E402
from fusion.core import lazy as lazy_mode  # noqa: E402
from fusion.core.schedule import schedule  # noqa: E402


def chain(x):
    return ((x * 2 + 1).exp() * x).sum()


def gelu(x):
    return x.gelu()


def softmax(x):
    return x.softmax(-1)


def chain_np(x):
    return (np.exp(x * np.float32(2) + np.float32(1)) * x).sum()


def gelu_np(x):
    c = np.float32(math.sqrt(2 / math.pi))
    return np.float32(0.5) * x * (1 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))


def softmax_np(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


WORKLOADS = {
    "((x*2+1).exp()*x).sum() 1e7": (chain, chain_np, (10_000_000,)),
    "gelu (tanh form) 1e7": (gelu, gelu_np, (10_000_000,)),
    "row softmax 10000x1000": (softmax, softmax_np, (10_000, 1000)),
}


def hand_fused():
    """The three workloads as hand-written parallel numba loops, or None without numba."""
    try:
        from numba import njit, prange

        from fusion.backends.numba.vecmath import vexp
    except ImportError:
        return None
    one, two = np.float32(1), np.float32(2)
    half, c, k = np.float32(0.5), np.float32(math.sqrt(2 / math.pi)), np.float32(0.044715)

    @njit(parallel=True, fastmath={"reassoc"}, error_model="numpy")
    def chain_nb(x):
        total = 0.0
        for i in prange(x.size):
            total += vexp(x[i] * two + one) * x[i]
        return total

    @njit(parallel=True, error_model="numpy")
    def gelu_nb(x):
        out = np.empty_like(x)
        for i in prange(x.size):
            v = x[i]
            u = c * (v + k * v * v * v)
            e = vexp(-two * np.abs(u))  # tanh(|u|) = (1 - e) / (1 + e), no overflow
            t = (one - e) / (one + e)
            out[i] = half * v * (one + (t if u >= 0 else -t))
        return out

    @njit(parallel=True, fastmath={"reassoc"}, error_model="numpy")
    def softmax_nb(x):
        out = np.empty_like(x)
        for r in prange(x.shape[0]):
            m = x[r, 0]
            for j in range(x.shape[1]):
                m = max(m, x[r, j])
            s = 0.0
            for j in range(x.shape[1]):
                e = vexp(x[r, j] - m)
                out[r, j] = e
                s += e
            inv = np.float32(1 / s)
            for j in range(x.shape[1]):
                out[r, j] *= inv
        return out

    return {"chain": chain_nb, "gelu": gelu_nb, "softmax": softmax_nb}


def median_ms(fn, repeats: int) -> float:
    fn()  # warm up: compilation, caches, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def passes(fn, x: fusion.Tensor) -> tuple[int, int, int]:
    """(primitives run one by one, kernels a fusing backend would run for the same graph,
    bytes those kernels read and write)."""
    stats = lazy_mode.stats
    stats.reset()
    with fusion.eager():
        fn(x).realize()
    items = schedule([fn(x).data], recompute=True)
    kernels = [item for item in items if item.kernel is not None]
    return stats.primitives, len(kernels), sum(item.bytes for item in kernels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the elements")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    lazy_backends = [n for n in fusion.available_backends() if fusion.get_backend(n).lazy]
    rng = np.random.default_rng(0)
    print(f"backends: {', '.join(fusion.available_backends())}; lazy: {', '.join(lazy_backends)}")
    loops = hand_fused()
    for name, (fn, ref, shape) in WORKLOADS.items():
        shape = (max(1, int(shape[0] * args.scale)), *shape[1:])
        print(f"\n{name}, shape {shape}")
        hand = loops[fn.__name__] if loops else None
        run_workload(fn, ref, rng.standard_normal(shape).astype(np.float32), lazy_backends,
                     args.repeats, hand)


def run_workload(fn, ref, host: np.ndarray, lazy_backends: list[str], repeats: int,
                 hand=None) -> None:
    """Print the passes over memory and the time of each contender for one workload."""
    if lazy_backends:
        probe = fusion.Tensor(host[:64] if host.ndim == 1 else host[:8], backend=lazy_backends[0])
        count, kernels, _ = passes(fn, probe)
        _, _, moved = passes(fn, fusion.Tensor(host, backend=lazy_backends[0]))
        print(f"  passes over memory: {count} primitives one by one; {kernels} kernels "
              f"when fused ({moved / 1e6:.1f} MB read and written by them)")
    reference = median_ms(lambda: ref(host), repeats)
    rows = [("hand-written numpy", reference)]
    if hand is not None:
        np.testing.assert_allclose(hand(host), ref(host), rtol=1e-3, atol=1e-3)
        rows.append(("hand-fused numba loop", median_ms(lambda: hand(host), repeats)))
    x = fusion.Tensor(host, backend="numpy")
    rows.append(("fusion numpy (eager)", median_ms(lambda: fn(x).realize(), repeats)))
    for backend in lazy_backends:
        y = fusion.Tensor(host, backend=backend)
        rows.append((f"fusion {backend} lazy", median_ms(lambda y=y: fn(y).realize(), repeats)))

        def eager(y=y):
            with fusion.eager():
                fn(y).realize()
        rows.append((f"fusion {backend} eager", median_ms(eager, repeats)))
    for label, ms in rows:
        print(f"  {label:<28} {ms:9.2f} ms  {ms / reference:6.2f}x numpy")

if __name__ == "__main__":
    main()
