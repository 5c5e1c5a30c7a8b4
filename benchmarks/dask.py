"""The dask backend against the numpy backend, in one run: a large reduction and an
elementwise chain, one data-parallel epoch, and the per-step overhead of a small model.

    python benchmarks/dask.py                 # 1e8 float32 values (400 MB)
    python benchmarks/dask.py --size 1e7      # a quicker run

Dask runs on LocalClusters of 1 and 2 single-threaded worker processes on 127.0.0.1 (and,
for the per-step overhead, on the local synchronous scheduler). The large tensor is made on
the workers from two small vectors (nothing of its size crosses from the client) and persisted
there before the timings; on the numpy backend the same expression makes it in memory.
Medians of ``--repeat`` runs; ratios are against the numpy backend in this same run.
"""

from __future__ import annotations

import os
import sys

# This file is named like the package it measures: its folder must not shadow ``dask``, and
# the repository root comes first (as for ``python -m``), here and in the spawned workers.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_HERE)] + [p for p in sys.path if os.path.abspath(p) != _HERE]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import fusion  # noqa: E402
from fusion.backends import dask as fusion_dask  # noqa: E402
from fusion.examples.dask_digits import local_cluster, train  # noqa: E402


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up: on a cluster it also waits for the persisted input to be computed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_tensor(size: int, backend: str) -> fusion.Tensor:
    """``size`` float32 values in [0, 1): a hash of two small arange vectors."""
    cols = 10_000
    rows = size // cols
    with fusion.use_backend(backend):
        a = fusion.arange(rows, dtype="float32").reshape(rows, 1)
        b = fusion.arange(cols, dtype="float32").reshape(1, cols)
        h = (a * 12.9898 + b * 78.233).sin() * 43758.5453
        x = h - h.floor()
        fusion.persist(x)
    return x


def large(size: int, backend: str, repeat: int) -> dict[str, float]:
    x = make_tensor(size, backend)
    return {
        "sum": median_seconds(lambda: x.sum().item(), repeat),
        "chain": median_seconds(lambda: ((x * 2 + 1).exp() * x).sum().item(), repeat),
    }


@contextlib.contextmanager
def dask_settings(**changes):
    previous = fusion_dask.configure(**changes)
    try:
        yield
    finally:
        fusion_dask.configure(**vars(previous))


def step_time(backend: str, steps: int = 10, batch: int = 128) -> float:
    """Seconds per training step of an MLP 64-64-10 (Adam), after two warm-up steps."""
    rng = np.random.default_rng(0)
    with fusion.use_backend(backend):
        fusion.manual_seed(0)
        model = fusion.nn.Sequential(fusion.nn.Linear(64, 64), fusion.nn.ReLU(),
                                     fusion.nn.Linear(64, 10))
        opt = fusion.optim.Adam(model.parameters(), lr=1e-3)
        x = fusion.Tensor(rng.normal(size=(batch, 64)).astype(np.float32))
        y = fusion.Tensor(rng.integers(0, 10, batch))

        def step():
            loss = fusion.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        for _ in range(2):
            step().item()
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()
        return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1e8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    size = int(args.size)
    print(f"dask {fusion.get_backend('dask').version}, numpy {np.__version__}; "
          f"{size:.0e} float32 values ({size * 4 / 1e6:.0f} MB)")

    rows = {"numpy": large(size, "numpy", args.repeat)}
    epochs = {"numpy": train("numpy", epochs=args.epochs)}
    overhead = {"numpy": step_time("numpy", steps=100)}
    with dask_settings(scheduler="synchronous"):
        overhead["dask, synchronous"] = step_time("dask")
    for workers in (1, 2):
        label = f"dask, {workers} worker{'s' if workers > 1 else ''}"
        with local_cluster(workers, memory_limit="2GiB") as client:
            with dask_settings(scheduler="auto", chunks="32MiB"):
                rows[label] = large(size, "dask", args.repeat)
            with dask_settings(scheduler="auto", chunks=-(-128 // workers)):
                epochs[label] = train("dask", epochs=args.epochs)
                overhead[label] = step_time("dask")
            del client

    print("\nlarge tensor: seconds (ratio to numpy)")
    print(f"{'':20} {'x.sum()':>18} {'((x*2+1).exp()*x).sum()':>26}")
    base = rows["numpy"]
    for label, r in rows.items():
        print(f"{label:20} {r['sum']:10.3f} ({r['sum'] / base['sum']:4.2f}x)"
              f" {r['chain']:17.3f} ({r['chain'] / base['chain']:4.2f}x)")

    steps = epochs["numpy"]["steps"]
    print(f"\ndata-parallel digits, {args.epochs} epoch(s) of {steps} steps, batch 128, "
          "MLP 64-64-10, Adam")
    reference = epochs["numpy"]
    for label, r in epochs.items():
        gap = float(np.max(np.abs(r["losses"] - reference["losses"])))
        print(f"{label:20} {r['seconds']:7.2f} s ({r['seconds'] / reference['seconds']:6.1f}x)"
              f"  test accuracy {r['accuracy']:.4f}  largest loss difference {gap:.1e}")

    print("\nper-step time of a small model (MLP 64-64-10, batch 128, Adam)")
    for label, seconds in overhead.items():
        print(f"{label:20} {seconds * 1e3:8.1f} ms ({seconds / overhead['numpy']:6.1f}x)")


if __name__ == "__main__":
    main()
