"""conv2d forward and backward on a few layer shapes, against hand-written numpy and torch.

    python benchmarks/conv.py                   # numpy backend
    python benchmarks/conv.py --backend numba
    python benchmarks/conv.py --reps 3          # fewer repetitions

Fusion's conv2d is a composition (windows laid out by movement primitives, then one
contraction), not a tuned kernel; the references are a numpy im2col (``sliding_window_view``
and ``tensordot``, forward only) and torch's ``conv2d`` when torch is installed (forward and
backward). Each figure is a median over interleaved rounds; ``ratio`` is the reference's time
divided by Fusion's (below 1: Fusion is slower). ``peak / unfolded`` is the most memory
Python's allocator saw during Fusion's forward pass with its graph kept for backward (numpy
backend: tracemalloc sees numpy's buffers), in units of the unfolded input
(N x C x kh x kw x out_h x out_w values).
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
from backends import median_times

import fusion

SHAPES = [  # (input N, C, H, W), (filters, kernel), stride, padding
    ((64, 3, 32, 32), (64, 3), 1, 1),
    ((64, 64, 16, 16), (64, 3), 1, 1),
    ((32, 16, 28, 28), (32, 5), 1, 0),
    ((64, 32, 32, 32), (64, 3), 2, 1),
]


def numpy_conv(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """im2col in numpy: a strided window view, then one tensordot."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    k = w.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (N, C, oh, ow, k, k)
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print(f"backend {args.backend}; torch {'installed' if torch else 'not installed'}")
    header = (f"{'input':>18} {'weight':>14} s p | {'fusion fwd':>10} {'numpy fwd':>9} "
              f"{'ratio':>5} | {'fusion f+b':>10} {'torch f+b':>9} {'ratio':>5} | "
              f"{'peak / unfolded':>15}")
    print(header)
    for shape, (filters, k), stride, padding in SHAPES:
        x_np = rng.standard_normal(shape).astype(np.float32)
        w_np = rng.standard_normal((filters, shape[1], k, k)).astype(np.float32) * 0.1
        print(measure(x_np, w_np, stride, padding, args.backend, args.reps, torch))


def measure(x_np: np.ndarray, w_np: np.ndarray, stride: int, padding: int, backend: str,
            reps: int, torch) -> str:
    """One row of the table for one layer shape."""
    x = fusion.Tensor(x_np, backend=backend)
    w = fusion.Tensor(w_np, backend=backend, requires_grad=True)

    def forward():
        with fusion.no_grad():
            return x.conv2d(w, stride=stride, padding=padding).numpy()

    def forward_backward():
        w.grad = None
        x.conv2d(w, stride=stride, padding=padding).sum().backward()
        return w.grad.numpy()

    contenders = {"fusion": forward, "fusion_fb": forward_backward,
                  "numpy": lambda: numpy_conv(x_np, w_np, stride, padding)}
    if torch is not None:
        xt, wt = torch.from_numpy(x_np), torch.from_numpy(w_np).requires_grad_()

        def torch_forward_backward():
            wt.grad = None
            torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding).sum().backward()

        contenders["torch_fb"] = torch_forward_backward
    got = median_times(contenders, reps)
    np.testing.assert_allclose(forward(), numpy_conv(x_np, w_np, stride, padding),
                               rtol=1e-3, atol=1e-3)
    k = w_np.shape[-1]
    out = (x_np.shape[2] + 2 * padding - k) // stride + 1
    unfolded = x_np.shape[0] * x_np.shape[1] * k * k * out * out * 4
    tracemalloc.start()
    kept = x.conv2d(w, stride=stride, padding=padding)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del kept
    torch_text = (f"{got['torch_fb'] * 1e3:7.1f}ms {got['torch_fb'] / got['fusion_fb']:5.2f}"
                  if torch is not None else f"{'-':>9} {'-':>5}")
    return (f"{str(x_np.shape):>18} {str(w_np.shape):>14} {stride} {padding} | "
            f"{got['fusion'] * 1e3:8.1f}ms {got['numpy'] * 1e3:7.1f}ms "
            f"{got['numpy'] / got['fusion']:5.2f} | {got['fusion_fb'] * 1e3:8.1f}ms "
            f"{torch_text} | {peak / unfolded:15.1f}")

if __name__ == "__main__":
    main()
