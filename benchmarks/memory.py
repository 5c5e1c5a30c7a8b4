"""What a kept loss costs after backward(), and what freeing the graph costs per step.

A small MLP (30-24-24-2, batch 8, the smallest and most overhead-bound model of
``training.py``) and an MNIST-shaped one (784-256-128-10, batch 128). For each: the memory
(tracemalloc) that 200 losses kept in a list hold after their backward, by default and with
``retain_graph=True``; and the time of a forward and backward pass with and without
``retain_graph``, interleaved in one process, as a ratio (freeing the graph is the extra work).

    python benchmarks/memory.py [--backend numpy]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import fusion
import fusion.nn as nn

SHAPES = {"42": ((30, 24, 24, 2), 8), "mnist": ((784, 256, 128, 10), 128)}


def _setup(backend: str, sizes: tuple[int, ...], batch: int):
    fusion.manual_seed(0)
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).to(backend)
    x = fusion.randn(batch, sizes[0], backend=backend)
    y = fusion.randint(0, sizes[-1], (batch,), backend=backend)
    loss_fn = nn.CrossEntropyLoss()
    return lambda: loss_fn(model(x), y)


def kept_bytes(loss_of, retain: bool, count: int = 200) -> float:
    """Bytes per loss that ``count`` kept losses hold after their backward."""
    for _ in range(3):
        loss_of().backward()
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    kept = []
    for _ in range(count):
        loss = loss_of()
        loss.backward(retain_graph=retain)
        kept.append(loss)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    return grown / len(kept)


def step_times(loss_of, steps: int) -> tuple[float, float]:
    """Medians (ms) of forward + backward, freeing the graph and retaining it, interleaved."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(2 * steps + 20):
        retain = bool(i % 2)
        start = time.perf_counter()
        loss_of().backward(retain_graph=retain)  # the loss dies here: its graph too
        if i >= 20:
            times[retain].append(time.perf_counter() - start)
    med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
    return med[False], med[True]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    print(f"backend {args.backend}")
    print(f"{'model':24} {'kept loss, freed':>18} {'retained':>12} {'step freed':>12} "
          f"{'retained':>10} {'ratio':>7}")
    for sizes, batch in SHAPES.values():
        loss_of = _setup(args.backend, sizes, batch)
        freed = kept_bytes(loss_of, retain=False)
        retained = kept_bytes(loss_of, retain=True)
        t_free, t_retain = step_times(loss_of, 400 if batch < 64 else 40)
        label = "-".join(map(str, sizes)) + f" b{batch}"
        print(f"{label:24} {freed / 1024:15.1f} KB {retained / 1024:9.1f} KB "
              f"{t_free:9.3f} ms {t_retain:7.3f} ms {t_free / t_retain:7.2f}")


if __name__ == "__main__":
    main()
