"""Per-op overhead on tiny tensors: Fusion beside raw numpy and, where installed, torch.

Small models are overhead-bound, so this is the speed users feel. Figures are medians of
repeated runs; compare the ratios, which are measured in the same process.

    python benchmarks/overhead.py [--backend numpy]
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np

import fusion

CHAIN_OPS = 20  # ops in the chain below: 5 rounds of 4


def median_us(fn, number: int, repeat: int = 15) -> float:
    fn()  # warm up (compiles, caches)
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def chain(x, lib):
    """20 elementwise ops, each round: mul, add, relu (maximum), mul."""
    y = x
    for _ in range(5):
        y = lib.relu(y * 1.01 + 0.5) * 0.99
    return y


class _Fusion:
    relu = staticmethod(lambda t: t.relu())


class _Numpy:
    relu = staticmethod(lambda a: np.maximum(a, 0))


def run(backend: str) -> list[tuple[str, float, float, float | None]]:
    fusion.manual_seed(0)
    rows = []
    a = fusion.randn(4, 4, backend=backend)
    b = fusion.randn(4, 4, backend=backend)
    an, bn = a.numpy().copy(), b.numpy().copy()
    x = fusion.randn(32, 32, backend=backend, requires_grad=True)
    xn = x.numpy().copy()
    try:
        import torch

        at, bt = torch.from_numpy(an), torch.from_numpy(bn)
        xt = torch.from_numpy(xn).requires_grad_(True)
    except ImportError:
        torch = None

    def fusion_fb():
        chain(x, _Fusion).sum().backward()

    def torch_fb():
        chain(xt, torch).sum().backward()

    rows.append(("add 4x4 (per op)", median_us(lambda: a + b, 20000),
                 median_us(lambda: an + bn, 20000),
                 median_us(lambda: at + bt, 20000) if torch else None))
    rows.append(("chain of 20 on 32x32, forward (per op)",
                 median_us(lambda: chain(x, _Fusion), 1000) / CHAIN_OPS,
                 median_us(lambda: chain(xn, _Numpy), 1000) / CHAIN_OPS,
                 median_us(lambda: chain(xt, torch), 1000) / CHAIN_OPS if torch else None))
    rows.append(("chain of 20 on 32x32, forward+backward (per op)",
                 median_us(fusion_fb, 300) / (CHAIN_OPS + 1),
                 None,
                 median_us(torch_fb, 300) / (CHAIN_OPS + 1) if torch else None))
    m = fusion.randn(512, 512, backend=backend)
    mn = m.numpy().copy()
    rows.append(("matmul 512x512 float32 (whole op)", median_us(lambda: m @ m, 20, 7),
                 median_us(lambda: mn @ mn, 20, 7),
                 median_us(lambda: torch.from_numpy(mn) @ torch.from_numpy(mn), 20, 7)
                 if torch else None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    rows = run(args.backend)
    print(f"backend {args.backend}; microseconds, median; ratio = fusion / reference")
    print(f"{'case':50} {'fusion':>9} {'numpy':>9} {'torch':>9} {'vs numpy':>9} {'vs torch':>9}")
    def fmt(v):
        return f"{v:9.2f}" if v is not None else f"{'-':>9}"

    def ratio(ours, v):
        return f"{ours / v:8.2f}x" if v else f"{'-':>9}"

    for name, ours, ref, torch_us in rows:
        print(f"{name:50} {fmt(ours)} {fmt(ref)} {fmt(torch_us)} "
              f"{ratio(ours, ref)} {ratio(ours, torch_us)}")


if __name__ == "__main__":
    main()
