"""Kernels, passes over memory and time of three elementwise-heavy workloads.

For each workload (``((x*2+1).exp()*x).sum()`` and the tanh form of gelu on 1e7 float32
values, a row softmax of 10000x1000) this prints:

* passes over memory: the primitives that run one by one (each reads its inputs and writes
  its output once) against the kernels of the lazy schedule for a backend that fuses (each
  is one pass), with the bytes those kernels move;
* the median time of each contender: hand-written numpy, Fusion on the numpy backend (eager),
  Fusion on each lazy backend, lazily and under ``fusion.eager()``.

    python benchmarks/fusion.py                 # the sizes above
    python benchmarks/fusion.py --scale 0.1     # a tenth of the elements, for a quick look

The numba backend compiles elementwise kernels of 32768 elements or more whole; a kernel
with a reduction still reaches it as primitives one by one, so the kernel counts are what a
backend fusing every kernel would run, and numba's times show how far it has got.
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
    for name, (fn, ref, shape) in WORKLOADS.items():
        shape = (max(1, int(shape[0] * args.scale)), *shape[1:])
        print(f"\n{name}, shape {shape}")
        run_workload(fn, ref, rng.standard_normal(shape).astype(np.float32), lazy_backends,
                     args.repeats)


def run_workload(fn, ref, host: np.ndarray, lazy_backends: list[str], repeats: int) -> None:
    """Print the passes over memory and the time of each contender for one workload."""
    if lazy_backends:
        probe = fusion.Tensor(host[:64] if host.ndim == 1 else host[:8], backend=lazy_backends[0])
        count, kernels, _ = passes(fn, probe)
        _, _, moved = passes(fn, fusion.Tensor(host, backend=lazy_backends[0]))
        print(f"  passes over memory: {count} primitives one by one; {kernels} kernels "
              f"when fused ({moved / 1e6:.1f} MB read and written by them)")
    reference = median_ms(lambda: ref(host), repeats)
    rows = [("hand-written numpy", reference)]
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
