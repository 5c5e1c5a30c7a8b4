"""The numba backend's thread policy against its alternatives, with fused kernels.

numba's OpenMP threads and OpenBLAS's threads share the cores (see
fusion/backends/numba/threads.py). This runs a few workloads under the shipped policy and
under alternatives, each (policy, workload) in a fresh process whose environment sets the
policy, the policies taking turns within each round so that a change in the machine's load
falls on all of them alike; a cell is the median over rounds of each process's median time.

Workloads (numba backend, fused kernels on):

* ``mnist b128``, ``mnist b128 jit``: benchmarks/training.py's MNIST step (MLP 784-256-128-10,
  cross-entropy, backward, Adam), plain and through ``fusion.jit``; every kernel runs
  serially at this size, so numba's threads never start;
* ``mnist b1024``: the same step at batch 1024, whose elementwise kernels are large enough to
  run on numba's threads between the BLAS products;
* ``chain``: benchmarks/fusion.py's ``((x*2+1).exp()*x).sum()`` on 1e7 float32 values,
  one large parallel fused kernel.

    python benchmarks/threads.py                  # 3 rounds
    python benchmarks/threads.py --rounds 5 --scale 0.1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

POLICIES = {
    "shipped: passive, BLAS auto": {},
    "numba threads spin (OMP_WAIT_POLICY=ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
    "BLAS unbounded (FUSION_NUMBA_BLAS_THREADS=keep)": {"FUSION_NUMBA_BLAS_THREADS": "keep"},
    "BLAS 1 thread always (FUSION_NUMBA_BLAS_THREADS=1)": {"FUSION_NUMBA_BLAS_THREADS": "1"},
    "numba 1 thread (NUMBA_NUM_THREADS=1)": {"NUMBA_NUM_THREADS": "1"},
    "one thread each (numba 1, BLAS 1)": {"NUMBA_NUM_THREADS": "1",
                                          "FUSION_NUMBA_BLAS_THREADS": "1"},
}
WORKLOADS = ("mnist b128", "mnist b128 jit", "mnist b1024", "chain")
def chain_size(scale: float) -> int:
    return max(1 << 16, int(10_000_000 * scale))


#: The variables a policy may set; each run starts from the environment without them.
_POLICY_VARS = {name for env in POLICIES.values() for name in env}


# --- one fresh process ------------------------------------------------------------------------
def _training_module():
    spec = importlib.util.spec_from_file_location("fusion_training_bench", HERE / "training.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(workload: str, scale: float) -> dict:
    """Median milliseconds per call of ``workload`` in this process (after a warm-up)."""
    # this script's folder holds benchmarks/fusion.py: it must not shadow the package
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != str(HERE)]
    import numpy as np

    import fusion

    sys.path.append(str(HERE))  # training.py's neighbours, now that fusion is the package
    training = _training_module()
    if workload.startswith("mnist"):
        batch = 1024 if "b1024" in workload else 128
        sizes = (784, 256, 128, 10)
        weights = training.initial_weights(sizes)
        x, y = training.random_data(sizes, batch)
        step = training.fusion_step_fn(weights, x, y, "numba", jit=workload.endswith("jit"))

        def call():
            return step().item()

        warmup, reps = 6, max(10, int(60 * scale) if batch == 128 else int(20 * scale))
    else:
        n = chain_size(scale)
        data = fusion.Tensor(np.random.default_rng(0).standard_normal(n, np.float32),
                             backend="numba")

        def call():
            return ((data * 2 + 1).exp() * data).sum().item()

        warmup, reps = 2, 15
    ms = training.time_steps(call, reps, warmup - 1)["median_ms"]  # warmup calls in all
    from numba.np.ufunc import parallel

    return dict(ms=ms,
                numba_threads_started=bool(getattr(parallel, "_is_initialized", False)))


# --- the driver ---------------------------------------------------------------------------------
def fresh_run(policy: str, workload: str, scale: float, cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARS}
    env.update(POLICIES[policy])
    env.update(FUSION_NUMBA_CACHE_DIR=cache, FUSION_NUMBA_QUIET="1")
    for name in ("PYTEST_XDIST_WORKER", "FUSION_BACKEND", "FUSION_DEBUG", "NUMBA_CACHE_DIR"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in
                                         env.get("PYTHONPATH", "").split(os.pathsep) if p])
    out = subprocess.run([sys.executable, __file__, "--child", workload, str(scale)], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="processes per cell (default 3)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the chain's 1e7 elements and of the timed steps")
    parser.add_argument("--workload", action="append", choices=WORKLOADS,
                        help="repeatable; default all")
    parser.add_argument("--cache", help="kernel cache directory (default: a new temporary "
                        "one, filled by a first run of each workload that is not timed)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]))))
        return
    workloads = args.workload or list(WORKLOADS)
    policies = list(POLICIES)
    with tempfile.TemporaryDirectory(prefix="fusion-threads-") as tmp:
        cache = args.cache or tmp
        for workload in workloads:  # compile once, so that no timed process compiles
            fresh_run(policies[0], workload, args.scale, cache)
        load_before = os.getloadavg()
        results: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):
            order = policies[r % len(policies):] + policies[:r % len(policies)]
            for workload in workloads:
                for policy in order:
                    run = fresh_run(policy, workload, args.scale, cache)
                    results.setdefault((policy, workload), []).append(run)
        load_after = os.getloadavg()
    print(f"ms per call, numba backend, median over {args.rounds} fresh processes per cell "
          f"(each the median of its calls); (xN): the shipped policy's time over this one's "
          f"(above 1: faster); load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
          f"after; {os.cpu_count()} cores")
    width = max(len(p) for p in policies)
    chain = f"chain {chain_size(args.scale):.0e}".replace("e+0", "e")
    names = [chain if w == "chain" else w for w in workloads]
    print(f"{'policy':<{width}} " + " ".join(f"{w:>18}" for w in names))
    shipped = {w: statistics.median(r["ms"] for r in results[(policies[0], w)])
               for w in workloads}
    for policy in policies:
        cells = []
        for workload in workloads:
            ms = statistics.median(r["ms"] for r in results[(policy, workload)])
            cells.append(f"{ms:9.2f} (x{shipped[workload] / ms:4.2f})")
        print(f"{policy:<{width}} " + " ".join(f"{c:>18}" for c in cells))
    started = {w: any(r["numba_threads_started"] for r in results[(policies[0], w)])
               for w in workloads}
    print("numba's threads started under the shipped policy: " +
          ", ".join(f"{w}: {'yes' if s else 'no'}" for w, s in started.items()))


if __name__ == "__main__":
    main()
