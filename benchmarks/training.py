"""Time per training step: forward, cross-entropy, backward and an Adam step.

Two MLPs on random data: an MNIST-shaped one (784-256-128-10, batch 128) and the 42 school's
(30-24-24-2, batch 8). Each installed Fusion backend runs beside a hand-written numpy
implementation of the same step (below: manual forward, backward and Adam, float32), all in
one process; figures are medians over single steps, and ratios are against the hand-written
numpy step measured in the same run. Each backend runs twice: its plain step and the same step
through ``fusion.jit`` (captured on its first calls, then replayed), with the speed-up of jit
over the plain step of that backend.

With ``--torch-python``, PyTorch (eager, CPU) is timed too, in processes of its own: torch and
numba both run OpenMP thread pools, so each contender runs in a fresh process, taking turns
with torch for a few rounds, and its time is given as a fraction of torch's.

    python benchmarks/training.py                      # every backend, both shapes
    python benchmarks/training.py --torch-python /path/to/python-with-torch
    python benchmarks/training.py --backend numpy --profile   # plus where the time goes

``--profile`` runs the numpy-backend step under cProfile and splits the time by layer
(backend primitives, buffer layer, autograd, Tensor frontend, nn and optim).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np
from workloads import BETAS, EPS, LR, SHAPES, initial_weights, random_data, time_steps

import fusion
import fusion.nn as nn
import fusion.optim as optim

_LIMITS: list = []


# --- hand-written numpy: what a careful person writes without a framework ---------------------
class NumpyMLP:
    """ReLU MLP with softmax cross-entropy and Adam, every gradient derived by hand. Weights
    are kept as (in, out) so that the forward pass is ``x @ W`` with no transpose."""

    def __init__(self, weights):
        self.params = []
        for w, b in weights:
            self.params += [np.ascontiguousarray(w.T), b.copy()]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, x, y) -> float:
        params = self.params
        n_layers = len(params) // 2
        # forward, keeping the activations
        acts = [x]
        h = x
        for i in range(n_layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < n_layers - 1:
                h = np.maximum(h, 0)
            acts.append(h)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(np.log(total[:, 0]).mean() - shifted[rows, y].mean())
        # backward: d loss / d logits = (softmax - one_hot) / N
        grad = exp / total
        grad[rows, y] -= 1
        grad /= len(y)
        grads = [None] * len(params)
        for i in reversed(range(n_layers)):
            grads[2 * i] = acts[i].T @ grad
            grads[2 * i + 1] = grad.sum(axis=0)
            if i:
                grad = (grad @ params[2 * i].T) * (acts[i] > 0)
        # Adam, in place
        self.t += 1
        b1, b2 = BETAS
        step_size = LR / (1 - b1 ** self.t)
        root = 1 / math.sqrt(1 - b2 ** self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= step_size * m / (np.sqrt(v) * root + EPS)
        return loss


# --- Fusion ------------------------------------------------------------------------------------
def fusion_setup(weights, x, y, backend: str):
    """The MLP with ``weights``, the data as tensors, the loss and Adam, on ``backend``."""
    with fusion.use_backend(backend):
        layers: list[nn.Module] = []
        for i, (w, b) in enumerate(weights):
            linear = nn.Linear(w.shape[1], w.shape[0])
            linear.load_state_dict({"weight": w, "bias": b})
            layers.append(linear)
            if i < len(weights) - 1:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
        xs = fusion.Tensor(x, backend=backend)
        ys = fusion.Tensor(y, backend=backend)
    opt = optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    return model, xs, ys, nn.CrossEntropyLoss(), opt


def fusion_step_fn(weights, x, y, backend: str, jit: bool = False) -> Callable[[], float]:
    model, xs, ys, loss_fn, opt = fusion_setup(weights, x, y, backend)

    def step(inputs, targets):
        opt.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        opt.step()
        return loss

    if jit:
        step = fusion.jit(step)
    return lambda: step(xs, ys)


# --- timing ------------------------------------------------------------------------------------
def time_interleaved(steps: dict[str, Callable], total: int, rounds: int = 10,
                     warmup: int = 3) -> dict[str, tuple[float, float]]:
    """name -> (first call in ms, median single step in ms). The implementations take turns,
    a few steps each per round, so that a change in the machine's load (it is shared) falls
    on all of them alike and the ratios stay fair."""
    first = {}
    for name, step in steps.items():
        start = time.perf_counter()
        step()
        first[name] = (time.perf_counter() - start) * 1e3
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    per_round = max(1, total // rounds)
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    return {name: (first[name], statistics.median(times[name]) * 1e3) for name in steps}


def same_losses(weights, x, y, backend: str, steps: int = 5, jit: bool = False) -> float:
    """The largest difference between the Fusion and hand-written losses over a few steps:
    evidence that both run the same computation."""
    ref = NumpyMLP(weights)
    step = fusion_step_fn(weights, x, y, backend, jit)
    return max(abs(ref.step(x, y) - float(step().item())) for _ in range(steps))


def run(shapes: list[str], backends: list[str], steps: dict[str, int]) -> None:
    print(f"backends: {', '.join(backends)}; numpy {np.__version__}")
    header = f"{'model':<24} {'implementation':<20} {'first ms':>9} {'median ms':>10} " \
             f"{'x numpy':>8}"
    print(header)
    print("-" * len(header))
    for shape in shapes:
        sizes, batch = SHAPES[shape]
        label = f"{'-'.join(map(str, sizes))} b{batch}"
        weights = initial_weights(sizes)
        x, y = random_data(sizes, batch)
        reference = NumpyMLP(weights)
        implementations = {"hand-written numpy": lambda r=reference, x=x, y=y: r.step(x, y)}
        drifts = {}
        for name in backends:
            drifts[f"fusion {name}"] = same_losses(weights, x, y, name)
            implementations[f"fusion {name}"] = fusion_step_fn(weights, x, y, name)
            drifts[f"fusion {name} jit"] = same_losses(weights, x, y, name, steps=8, jit=True)
            implementations[f"fusion {name} jit"] = fusion_step_fn(weights, x, y, name, True)
        results = time_interleaved(implementations, steps[shape])
        base = results["hand-written numpy"][1]
        for name, (first, ms) in results.items():
            note = f"   (loss vs hand-written: {drifts[name]:.1e})" if name in drifts else ""
            print(f"{label:<24} {name:<20} {first:9.3f} {ms:10.3f} {ms / base:8.2f}{note}")
        for name in backends:
            plain, jitted = results[f"fusion {name}"][1], results[f"fusion {name} jit"][1]
            print(f"{label:<24} {'jit vs plain ' + name:<20} {plain / jitted:20.2f}x faster "
                  "(plain step time / jitted step time)")
            print(f"{label:<24} {'calls ' + name:<20} "
                  f"{backend_calls(implementations[f'fusion {name}'], name)}")


def backend_calls(step: Callable, backend: str) -> str:
    """What one call of ``step`` asks of ``backend``: fused kernels, contractions (matmul) and
    the other computing primitives (elementwise and reductions; views and fills left out),
    counted by wrapping the backend's methods for that one call."""
    from collections import Counter

    from fusion.core.ops import ELEMENTWISE, ReduceOp

    impl = fusion.get_backend(backend)
    primitives = {op.value for op in ELEMENTWISE} | {op.value for op in ReduceOp}
    names = [n for n in (*sorted(primitives), "fuse", "contract") if hasattr(impl, n)]
    counts: Counter = Counter()
    saved = {n: impl.__dict__[n] for n in names if n in impl.__dict__}
    def counting(name: str, method: Callable) -> Callable:
        def counted(*args, **kwargs):
            counts[name] += 1
            return method(*args, **kwargs)
        return counted

    for name in names:
        setattr(impl, name, counting(name, getattr(impl, name)))
    try:
        step()
    finally:
        for name in names:
            if name in saved:
                setattr(impl, name, saved[name])
            else:
                delattr(impl, name)
    others = sum(counts[n] for n in primitives)
    return (f"{counts['fuse']} fused kernels, {counts['contract']} matmuls, "
            f"{others} other primitives per plain step")


# --- what a replay runs ------------------------------------------------------------------------
def replay_calls(shape: str, backend: str) -> dict[str, Counter]:
    """The backend calls one replay of each part of the step makes on ``backend``: the
    forward pass with the loss, the backward pass, the optimizer's update (each part measured
    as the difference between jitted functions doing more and more of the step)."""
    sizes, batch = SHAPES[shape]
    x, y = random_data(sizes, batch)
    model, xs, ys, loss_fn, opt = fusion_setup(initial_weights(sizes), x, y, backend)

    def forward(inputs, targets):
        return loss_fn(model(inputs), targets)

    def backward(inputs, targets):
        opt.zero_grad()
        loss = forward(inputs, targets)
        loss.backward()
        return loss

    def step(inputs, targets):
        loss = backward(inputs, targets)
        opt.step()
        return loss

    counts = []
    for fn in (forward, backward, step):
        jitted = fusion.jit(fn)
        for _ in range(4):
            jitted(xs, ys)
        counts.append(jitted.calls)
    return {"forward and loss": counts[0], "backward": counts[1] - counts[0],
            "Adam update": counts[2] - counts[1]}


def print_replay_calls(shapes: list[str], backends: list[str]) -> None:
    print("\nbackend calls per replay of each part of the jitted step (fuse: fused kernels, "
          "contract: matmuls, assign: copies into state, other names: primitives run alone)")
    for shape in shapes:
        sizes, batch = SHAPES[shape]
        for backend in backends:
            if "assign" not in fusion.get_backend(backend).capabilities:
                continue
            parts = replay_calls(shape, backend)
            text = "; ".join(f"{part} {sum(c.values())} ({_names(c)})"
                             for part, c in parts.items())
            print(f"  {'-'.join(map(str, sizes))} b{batch} on {backend}: {text}")


def _names(counts: Counter) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.most_common())


# --- against torch, one process per contender -------------------------------------------------
HERE = os.path.dirname(os.path.abspath(__file__))
#: The environment this script started with: each contender's process gets it as it was, not
#: as a backend left it (the numba backend sets OMP_WAIT_POLICY=PASSIVE for its threads, which
#: would make torch's OpenMP threads sleep between its ops too).
ENVIRONMENT = dict(os.environ)
#: What --torch-python compares with torch eager: the Fusion steps it names.
VERSUS = ("numba jit", "numpy jit", "numba", "numpy")


def worker(contender: str, shape: str, steps: int) -> None:
    """Time one Fusion contender (``"numba jit"``, ``"numpy"``...) in this process; print
    the figures as JSON."""
    backend, _, jit = contender.partition(" ")
    sizes, batch = SHAPES[shape]
    x, y = random_data(sizes, batch)
    step = fusion_step_fn(initial_weights(sizes), x, y, backend, jit == "jit")
    print(json.dumps(time_steps(step, steps)))


def _measure(command: list[str]) -> float:
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env=ENVIRONMENT)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["median_ms"]


def versus_torch(shapes: list[str], backends: list[str], torch_python: str, rounds: int,
                 steps: dict[str, int]) -> None:
    """Each contender in its own fresh process, taking turns with torch round after round
    (torch and numba both run OpenMP thread pools: in one process they would time their
    clash); medians over the rounds, and each Fusion step's time as a fraction of torch's."""
    contenders = [c for c in VERSUS if c.split()[0] in backends]
    print(f"\nagainst torch eager (CPU), one process per contender, {rounds} rounds taking "
          f"turns; torch from {torch_python}")
    header = f"{'model':<24} {'implementation':<20} {'median ms':>10} {'x torch':>8}"
    print(header)
    print("-" * len(header))
    for shape in shapes:
        sizes, batch = SHAPES[shape]
        label = f"{'-'.join(map(str, sizes))} b{batch}"
        n = str(steps[shape])
        commands = {"torch eager": [torch_python, os.path.join(HERE, "workloads.py"), "torch",
                                    shape, "--steps", n]}
        for c in contenders:
            commands[f"fusion {c}"] = [sys.executable, os.path.abspath(__file__), "--worker",
                                       c, "--shape", shape, "--steps", n]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, command in commands.items():
                times[name].append(_measure(command))
        base = statistics.median(times["torch eager"])
        for name, values in times.items():
            ms = statistics.median(values)
            print(f"{label:<24} {name:<20} {ms:10.3f} {ms / base:8.2f}")


# --- profile -----------------------------------------------------------------------------------
LAYERS = [
    ("backend primitives (numpy)", ("fusion/backends/",)),
    ("buffer layer", ("fusion/core/buffer.py",)),
    ("autograd Functions", ("fusion/core/autograd.py",)),
    ("Tensor frontend", ("fusion/core/tensor.py", "fusion/core/dtypes.py",
                         "fusion/core/grad_mode.py", "fusion/core/backend.py")),
    ("nn modules and losses", ("fusion/nn/",)),
    ("optimizer", ("fusion/optim/",)),
]


def profile(shape: str, steps: int) -> None:
    sizes, batch = SHAPES[shape]
    weights = initial_weights(sizes)
    x, y = random_data(sizes, batch)
    step = fusion_step_fn(weights, x, y, "numpy")
    for _ in range(3):
        step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    by_layer: dict[str, float] = defaultdict(float)
    applies = 0
    for (filename, _, function), (_, calls, tottime, _, _) in stats.stats.items():
        path = filename.replace("\\", "/")
        layer = next((name for name, parts in LAYERS if any(p in path for p in parts)), None)
        if layer is None:
            # cProfile lists C functions under "~"; a ufunc called straight from Python code
            # (np.add as a backend method) is not listed: its time is its caller's own time
            layer = "C functions (matmul, reductions)" if filename == "~" else "other Python"
        by_layer[layer] += tottime
        if function == "_apply" and path.endswith("fusion/core/tensor.py"):
            applies = calls
    print(f"\nprofile of the {shape} step on the numpy backend, {steps} steps, "
          f"{total / steps * 1e3:.3f} ms per step under cProfile; "
          f"{applies / steps:.0f} differentiable ops (Functions) per step")
    for layer, seconds in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        print(f"  {layer:<30} {seconds / total:6.1%}  {seconds / steps * 1e3:8.3f} ms/step")
    print("\n  top functions by own time:")
    stats.sort_stats("tottime").print_stats(12)


def limit_threads(n: int) -> None:
    """On a small shared machine, idle-spinning BLAS threads distort timings; one limit for
    all implementations keeps the comparison fair."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed: --threads is ignored for numpy's BLAS")
    else:
        _LIMITS.append(threadpool_limits(n))  # kept: the limit lasts while it lives
    print(f"threads limited to {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", help="a Fusion backend (repeatable; "
                        "default: every installed one)")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES),
                        help="which model (repeatable; default both)")
    parser.add_argument("--steps", type=int, default=0,
                        help="timed steps per implementation (default 60 mnist, 400 42)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the numpy-backend step with cProfile")
    parser.add_argument("--threads", type=int, default=0,
                        help="limit BLAS to this many threads, for every "
                             "implementation alike (default: the libraries' own choice)")
    parser.add_argument("--torch-python", metavar="PYTHON",
                        help="also time torch eager with this Python (one with torch "
                             "installed), each contender in its own process")
    parser.add_argument("--rounds", type=int, default=3,
                        help="turns each contender takes against torch (default 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = args.shape or list(SHAPES)
    steps = {"mnist": args.steps or 60, "42": args.steps or 400}
    if args.worker:
        worker(args.worker, shapes[0], steps[shapes[0]])
        return
    if args.threads:
        limit_threads(args.threads)
    backends = args.backend or fusion.available_backends()
    run(shapes, backends, steps)
    print_replay_calls(shapes, backends)
    if args.torch_python:
        versus_torch(shapes, backends, args.torch_python, args.rounds, steps)
    if args.profile:
        for shape in shapes:
            profile(shape, max(steps[shape] // 4, 10))


if __name__ == "__main__":
    main()
