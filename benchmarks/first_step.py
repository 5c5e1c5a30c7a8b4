"""Compile budgets: the first MNIST training step of a fresh process, with an empty and a warm
kernel cache.

Each run is a new Python process (this script with ``--child``), so nothing compiled or
imported by an earlier run helps a later one except what the kernel cache on disk holds. A
run times, in order:

* ``import fusion`` (and checks that it did not import numba);
* starting the backend (for numba: importing numba and the kernel modules);
* building the MNIST-shaped MLP 784-256-128-10, its Adam optimizer and a batch of 128;
* the first training steps (forward, cross-entropy, backward, Adam; the loss read back with
  ``.item()``), either plainly or through ``fusion.jit``. A jitted step runs plainly while it
  captures and replays afterwards, so its calls are timed until the first replay (however many
  captures that takes) and one call more.

For the numba backend, the "cold" run of each mode points ``FUSION_NUMBA_CACHE_DIR`` and
``NUMBA_CACHE_DIR`` at a new empty directory; the "warm" runs reuse that directory (median
of ``--reps`` runs). The numpy backend, which compiles nothing, runs the same way as the
reference. The budgets: the first step (the first call, plain or jitted) <= 10 s with an
empty cache and <= 1 s with a warm one, and ``import fusion`` imports no numba. For jit the
table also shows the time of every call up to and including the first replay ("to replay"):
what a jitted training loop spends before it runs at full speed.

    python benchmarks/first_step.py              # numba and numpy, plain and jit
    python benchmarks/first_step.py --reps 5 --backend numba
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLD_BUDGET_S = 10.0
WARM_BUDGET_S = 1.0
#: Calls of a jitted step timed at most while waiting for its first replay.
MAX_JIT_CALLS = 8


# --- one fresh process ------------------------------------------------------------------------
def child(backend: str, mode: str) -> dict:
    """Time the stages of a fresh process (this function must run before anything imports
    fusion)."""
    # this script's folder holds benchmarks/fusion.py: it must not shadow the package
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    t0 = time.perf_counter()
    import fusion

    t_import = time.perf_counter() - t0
    numba_after_import = "numba" in sys.modules
    import numpy as np

    import fusion.nn as nn
    import fusion.optim as optim

    t1 = time.perf_counter()
    b = fusion.get_backend(backend)
    t_start = time.perf_counter() - t1
    compiles = count_compiles() if backend == "numba" else []
    t2 = time.perf_counter()
    rng = np.random.default_rng(0)
    with fusion.use_backend(backend):
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 10))
        x = fusion.Tensor(rng.standard_normal((128, 784)).astype(np.float32))
        y = fusion.Tensor(rng.integers(0, 10, 128))
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def step(inputs, targets):
        opt.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        opt.step()
        return loss

    if mode == "jit":
        step = fusion.jit(step)
    t_build = time.perf_counter() - t2
    calls, losses, replayed_at = [], [], None
    for i in range(MAX_JIT_CALLS if mode == "jit" else 3):
        t = time.perf_counter()
        losses.append(float(step(x, y).item()))
        calls.append(time.perf_counter() - t)
        if mode == "jit" and replayed_at is None and step.replays:
            replayed_at = i + 1
        if mode == "jit" and replayed_at is not None and i + 1 >= max(replayed_at + 1, 3):
            break
    return dict(import_fusion=t_import, numba_after_import=numba_after_import,
                start_backend=t_start, build=t_build, calls=calls, losses=losses,
                replayed_at=replayed_at, compiles=len(compiles),
                compile_s=getattr(b, "compile_seconds", 0.0))


def count_compiles() -> list:
    """A list that grows by one for each function numba compiles from now on (loads from
    the cache and functions compiled inside another's compilation do not count)."""
    from numba.core import event

    compiled, depth = [], [0]

    class Listener(event.Listener):
        def on_start(self, ev) -> None:
            depth[0] += 1

        def on_end(self, ev) -> None:
            depth[0] -= 1
            if not depth[0]:
                compiled.append(1)

    event.register("numba:compile", Listener())
    return compiled


# --- the driver ---------------------------------------------------------------------------------
def fresh_run(backend: str, mode: str, cache: str) -> dict:
    env = dict(os.environ, FUSION_NUMBA_CACHE_DIR=cache, NUMBA_CACHE_DIR=cache,
               FUSION_NUMBA_QUIET="1")
    for name in ("PYTEST_XDIST_WORKER", "FUSION_BACKEND", "FUSION_DEBUG"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in
                                         env.get("PYTHONPATH", "").split(os.pathsep) if p])
    out = subprocess.run([sys.executable, __file__, "--child", backend, mode], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def until_replay(run: dict, mode: str) -> float:
    """For jit, every call up to and including the first replay (all of them if none
    replayed); nan for a plain step."""
    if mode == "plain":
        return math.nan
    upto = run["replayed_at"] or len(run["calls"])
    return sum(run["calls"][:upto])


def cache_counts(cache: str) -> tuple[int, int]:
    """(generated fused-kernel modules, compiled functions indexed) in a cache directory."""
    root = Path(cache)
    return len(list(root.rglob("fusion_fused_*.py"))), len(list(root.rglob("*.nbi")))


def measure(backend: str, mode: str, reps: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="fusion-first-step-") as cache:
        cold = fresh_run(backend, mode, cache)
        counts = cache_counts(cache)
        warm = [fresh_run(backend, mode, cache) for _ in range(reps)]
    return dict(cold=cold, warm=warm, counts=counts)


COLUMNS = ("import", "start", "build", "call 1", "call 2", "call 3", "to replay", "compile",
           "kernels", "total")


def summary(run: dict, mode: str) -> dict[str, float]:
    """One run's figures by column (a call not made counts 0)."""
    calls = (run["calls"] + [0.0, 0.0, 0.0])[:3]
    setup = run["import_fusion"] + run["start_backend"] + run["build"]
    return dict(zip(COLUMNS, [run["import_fusion"], run["start_backend"], run["build"], *calls,
                              until_replay(run, mode), run["compile_s"], run["compiles"],
                              setup + calls[0]],
                    strict=True))


def median_summary(runs: list[dict], mode: str) -> dict[str, float]:
    rows = [summary(r, mode) for r in runs]
    return {key: statistics.median(row[key] for row in rows) for key in COLUMNS}


def report(results: dict, reps: int) -> bool:
    """Print the table and one line per budget; whether every budget was met."""
    header = f"{'backend':<7} {'mode':<6} {'cache':<13} " + \
        " ".join(f"{c:>9}" for c in COLUMNS)
    print(f"seconds per stage, fresh processes; warm: median of {reps}; call 1 is the budgeted "
          "first step; to replay: jit's calls up to and including its first replay; compile: "
          "numba's compile time; kernels: functions numba compiled; total: process start to "
          "the end of call 1")
    print(header)
    print("-" * len(header))
    for (backend, mode), res in results.items():
        for label, runs in [("cold (empty)", [res["cold"]]), ("warm", res["warm"])]:
            row = median_summary(runs, mode)
            print(f"{backend:<7} {mode:<6} {label:<13} " +
                  " ".join(f"{'-':>9}" if row[c] != row[c] else f"{row[c]:9.0f}"
                           if c == "kernels" else f"{row[c]:9.3f}" for c in COLUMNS))
        if mode == "jit":
            print(f"{'':<7} {mode:<6} first replay at call {res['cold']['replayed_at']} (cold), "
                  f"{[r['replayed_at'] for r in res['warm']]} (warm)")
        if backend == "numba":
            fused, indexed = res["counts"]
            print(f"{'':<7} {mode:<6} cache after the cold run: {fused} fused-kernel modules, "
                  f"{indexed} compiled functions indexed")
    print()
    ok = True
    every = [r for res in results.values() for r in [res["cold"], *res["warm"]]]
    clean = not any(r["numba_after_import"] for r in every)
    ok &= clean
    print(f"budget: `import fusion` imports no numba ({len(every)} processes): "
          f"{'met' if clean else 'NOT MET'}")
    for (backend, mode), res in results.items():
        if backend != "numba":
            continue
        cold = res["cold"]["calls"][0]
        warm = median_summary(res["warm"], mode)["call 1"]
        for label, value, limit in [("empty cache", cold, COLD_BUDGET_S),
                                    ("warm cache", warm, WARM_BUDGET_S)]:
            met = value <= limit
            ok &= met
            print(f"budget: first MNIST step, numba {mode}, {label}: {value:.2f} s <= "
                  f"{limit:g} s: {'met' if met else 'NOT MET'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--backend", action="append", choices=["numba", "numpy"],
                        help="repeatable; default both")
    parser.add_argument("--mode", action="append", choices=["plain", "jit"],
                        help="repeatable; default both")
    parser.add_argument("--reps", type=int, default=3, help="warm runs per cell (default 3)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    results = {}
    for backend in args.backend or ["numba", "numpy"]:
        for mode in args.mode or ["plain", "jit"]:
            results[(backend, mode)] = measure(backend, mode, args.reps)
    report(results, args.reps)


if __name__ == "__main__":
    main()
