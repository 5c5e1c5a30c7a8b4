"""The training workloads the benchmarks share, and the PyTorch contender, without Fusion.

This module imports only numpy (and torch, when asked for the torch step), so that it runs in
any Python that has them: torch and numba both start OpenMP thread pools, and timing them in
one process measures their clash, not either library. ``benchmarks/training.py`` runs this
file as a separate process for the torch figures::

    python benchmarks/workloads.py torch 42 --steps 400   # {"first_ms": .., "median_ms": ..}
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np

#: model -> (layer sizes, batch): an MNIST-shaped MLP and the 42 school's.
SHAPES = {
    "mnist": ((784, 256, 128, 10), 128),
    "42": ((30, 24, 24, 2), 8),
}
LR = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8


def random_data(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return x, y


def initial_weights(sizes, seed=0):
    """(weight (out, in), bias (out,)) per layer, float32, as Linear's default init."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
        bound = 1 / math.sqrt(fan_in)
        layers.append((rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                       rng.uniform(-bound, bound, fan_out).astype(np.float32)))
    return layers


def torch_step_fn(weights, x, y):
    """The step in PyTorch (eager, CPU): ReLU MLP, cross-entropy, Adam; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    layers = []
    for i, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xs), ys)
        loss.backward()
        opt.step()
        return loss

    return step


def time_steps(step, steps: int, warmup: int = 5) -> dict[str, float]:
    """The first call's time and the median of ``steps`` single steps after ``warmup``, ms."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"first_ms": first * 1e3, "median_ms": statistics.median(times) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description="time the torch step in this process")
    parser.add_argument("contender", choices=["torch"])
    parser.add_argument("model", choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    sizes, batch = SHAPES[args.model]
    x, y = random_data(sizes, batch)
    step = torch_step_fn(initial_weights(sizes), x, y)
    if step is None:
        raise SystemExit("torch is not installed in this Python")
    print(json.dumps(time_steps(step, args.steps)))


if __name__ == "__main__":
    main()
