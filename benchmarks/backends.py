"""The numpy and numba backends side by side, with raw numpy as the reference, in one run.

    python benchmarks/backends.py            # everything (a few minutes on 2 cores)
    python benchmarks/backends.py --quick    # fewer repetitions, no 1e7 sizes
    python benchmarks/backends.py --only elementwise,reductions,matmul,compile,import,clash
    python benchmarks/backends.py --only clash --busy 2   # thread policies, 2 busy processes
    python benchmarks/backends.py --only details   # one small call, serial exp/log, accuracy

Written against the backend methods (the primitives), so it measures the backends, not the
Tensor frontend. Every figure is a median over repetitions taken in interleaved rounds (each
round runs every contender once), so that the load of a shared machine falls on all alike;
compare the ratios printed, measured in the same run, rather than absolute times across runs.
``ratio`` is raw numpy's time divided by the contender's: above 1 is faster than raw numpy.

For peak BLAS figures on machines that set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, unset them in
the command only: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/backends.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable

import numpy as np

import fusion
from fusion import float32


def median_times(contenders: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds of each contender, over ``reps`` interleaved rounds (after a warm-up)."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_table(title: str, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def cell(seconds: float, raw: float, nbytes: float | None = None, flops: float | None = None):
    text = f"{seconds * 1e3:.3f} ms"
    if nbytes is not None:
        text += f" {nbytes / seconds / 1e9:5.1f} GB/s"
    if flops is not None:
        text += f" {flops / seconds / 1e9:6.1f} GFLOP/s"
    return text + f" (x{raw / seconds:.2f})"


# --- the workloads, as primitives ---------------------------------------------------------------


def const(b, value, shape):
    """A constant broadcast to ``shape``, as the buffer layer makes one."""
    return b.expand(b.full((1,) * len(shape), value, float32), shape)


def chain(b, x):
    """((x * 2 + 1).exp() * x).sum() in primitives."""
    y = b.mul(x, const(b, 2.0, x.shape))
    y = b.add(y, const(b, 1.0, x.shape))
    y = b.mul(b.exp(y), x)
    return b.reduce_sum(y, tuple(range(x.ndim)))


def softmax(b, x):
    """Softmax over the last axis, numerically stable, in primitives."""
    m = b.expand(b.reduce_max(x, (1,)), x.shape)
    e = b.exp(b.sub(x, m))
    s = b.expand(b.reduce_sum(e, (1,)), x.shape)
    return b.div(e, s)


def raw_chain(x):
    return (np.exp(x * np.float32(2) + np.float32(1)) * x).sum()


def raw_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- sections -------------------------------------------------------------------------------------


def bench_elementwise(backends, sizes, reps):
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        x = (rng.standard_normal(n) * 0.5).astype(np.float32)
        xs = x.reshape(-1, 1000)
        contenders = {"raw": lambda x=x: raw_chain(x)}
        contenders |= {name: (lambda b=b, x=x: chain(b, x)) for name, b in backends.items()}
        t = median_times(contenders, reps)
        rows.append([f"chain {n:.0e}", *[cell(t[k], t["raw"], 4 * n) for k in t]])
        contenders = {"raw": lambda xs=xs: raw_softmax(xs)}
        contenders |= {name: (lambda b=b, xs=xs: softmax(b, xs)) for name, b in backends.items()}
        t = median_times(contenders, reps)
        rows.append([f"softmax {xs.shape[0]}x1000", *[cell(t[k], t["raw"], 8 * n) for k in t]])
    print_table(
        "elementwise, float32 (GB/s: input read once, output written once)",
        rows,
        ["workload", "raw numpy", *backends],
    )


def bench_reductions(backends, reps):
    rows = []
    x = np.random.default_rng(1).standard_normal((4096, 4096)).astype(np.float32)
    for op, raw in [("sum", np.sum), ("max", np.max)]:
        for axis in (0, 1):
            contenders = {"raw": lambda raw=raw, axis=axis: raw(x, axis=axis, keepdims=True)}
            for name, b in backends.items():
                method = getattr(b, f"reduce_{op}")
                contenders[name] = lambda m=method, axis=axis: m(x, (axis,))
            t = median_times(contenders, reps)
            rows.append([f"{op} axis {axis}", *[cell(t[k], t["raw"], x.nbytes) for k in t]])
    print_table("reductions of a 4096x4096 float32", rows, ["workload", "raw numpy", *backends])


def bench_matmul(backends, reps):
    rows = []
    rng = np.random.default_rng(2)
    for n in (256, 512, 1024):
        a = rng.standard_normal((n, n)).astype(np.float32)
        c = rng.standard_normal((n, n)).astype(np.float32)
        contenders = {"raw": lambda a=a, c=c: np.matmul(a, c)}
        contenders |= {
            name: (lambda b=b, a=a, c=c: b.contract(a, c)) for name, b in backends.items()
        }
        t = median_times(contenders, reps)
        rows.append([f"matmul {n}", *[cell(t[k], t["raw"], flops=2 * n**3) for k in t]])
    print_table("matmul, float32", rows, ["workload", "raw numpy", *backends])


_FIRST_USE = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import numpy as np
    import fusion
    t1 = time.perf_counter()
    b = fusion.get_backend("numba")
    t2 = time.perf_counter()
    f32, rng = fusion.float32, np.random.default_rng(0)
    def const(v, shape):
        return b.expand(b.full((1,) * len(shape), v, f32), shape)
    # The primitives of one training step of an MNIST-shaped MLP (784-256-10, batch 128):
    x = rng.standard_normal((128, 784)).astype(np.float32)
    w = rng.standard_normal((784, 256)).astype(np.float32)
    v = rng.standard_normal((256, 10)).astype(np.float32)
    h = b.contract(x, w)
    h = b.add(h, b.expand(b.full((1, 256), 0.1, f32), h.shape))
    mask = b.cmplt(const(0.0, h.shape), h)
    h = b.maximum(h, const(0.0, h.shape))
    z = b.contract(h, v)
    m = b.reduce_max(z, (1,))
    e = b.exp(b.sub(z, b.expand(m, z.shape)))
    s = b.reduce_sum(e, (1,))
    logp = b.sub(b.sub(z, b.expand(m, z.shape)), b.expand(b.log(s), z.shape))
    labels = b.cast(b.from_numpy(rng.integers(0, 10, (128, 1))), fusion.int32)
    onehot = b.cast(b.cmpeq(b.expand(labels, (128, 10)), b.from_numpy(
        np.broadcast_to(np.arange(10, dtype=np.int32), (128, 10)))), f32)
    loss = b.reduce_sum(b.mul(b.neg(logp), onehot), (0, 1))
    g = b.div(b.sub(b.div(e, b.expand(s, e.shape)), onehot), const(128.0, e.shape))
    gh = b.where(mask, b.contract(g, b.permute(v, (1, 0))), const(0.0, h.shape))
    gw = b.contract(b.permute(x, (1, 0)), gh)
    w2 = b.sub(w, b.mul(gw, const(0.01, gw.shape)))
    t3 = time.perf_counter()
    big = rng.standard_normal(1 << 20).astype(np.float32)  # and the parallel kernels
    b.reduce_sum(b.mul(b.exp(b.mul(big, const(2.0, big.shape))), big), (0,))
    t4 = time.perf_counter()
    print(json.dumps(dict(import_fusion=t1 - t0, start_backend=t2 - t1, mlp_step=t3 - t2,
                          parallel_chain=t4 - t3)))
""")


_FIRST_TRAINING_STEP = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import numpy as np
    import fusion
    import fusion.nn as nn
    import fusion.optim as optim
    rng = np.random.default_rng(0)
    with fusion.use_backend("numba"):
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 10))
        x = fusion.Tensor(rng.standard_normal((128, 784)).astype(np.float32))
        y = fusion.Tensor(rng.integers(0, 10, 128))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    def step():
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.item())
    t1 = time.perf_counter()
    step()
    t2 = time.perf_counter()
    step()
    t3 = time.perf_counter()
    print(json.dumps(dict(setup=t1 - t0, first_step=t2 - t1, second_step=t3 - t2)))
""")


def _fresh_runs(code: str, env: dict, reps: int) -> tuple[dict, dict]:
    """One run with an empty cache, then ``reps`` runs with it warm: (cold, median warm)."""
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(reps + 1)
    ]
    cold = runs[0]
    return cold, {k: statistics.median(r[k] for r in runs[1:]) for k in cold}


def bench_compile(reps):
    with tempfile.TemporaryDirectory() as primitives_cache, tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, FUSION_NUMBA_CACHE_DIR=primitives_cache)
        env.pop("PYTEST_XDIST_WORKER", None)
        cold, warm = _fresh_runs(_FIRST_USE, env, reps)
        env["FUSION_NUMBA_CACHE_DIR"] = cache
        step_cold, step_warm = _fresh_runs(_FIRST_TRAINING_STEP, env, reps)
    keys = ("import_fusion", "start_backend", "mlp_step", "parallel_chain")
    rows = [
        [label, *[f"{r[k]:.3f} s" for k in keys]]
        for label, r in [("cold (empty cache)", cold), (f"warm (median of {reps})", warm)]
    ]
    print_table(
        "first use of the numba backend, fresh processes "
        "(MLP step: the primitives of one 784-256-10 training step, serial kernels; "
        "parallel: one chain on 1M elements)",
        rows,
        [
            "cache",
            "import fusion",
            "start backend (import numba)",
            "first MLP step",
            "first parallel chain",
        ],
    )
    keys = ("setup", "first_step", "second_step")
    rows = [
        [label, *[f"{r[k]:.3f} s" for k in keys]]
        for label, r in [("cold (empty cache)", step_cold), (f"warm (median of {reps})", step_warm)]
    ]
    print_table(
        "first Tensor-level training step on numba, fresh processes "
        "(MLP 784-256-128-10, batch 128, cross-entropy, backward, Adam)",
        rows,
        ["cache", "imports and model", "first step", "second step"],
    )


_IMPORT = (
    "import time; t=time.perf_counter(); import fusion; b=fusion.get_backend(); "
    "import sys; print(time.perf_counter()-t, 'numba' in sys.modules)"
)


def bench_import(reps):
    rows = []
    for label, extra in [
        ("import numpy (alone: the share of numpy in the rows below)", "numpy only"),
        ("import fusion", None),
        ("+ numpy backend", "numpy"),
        ("+ numba backend", "numba"),
    ]:
        env = dict(os.environ)
        env.pop("FUSION_BACKEND", None)
        code = _IMPORT
        if extra == "numpy only":
            code = code.replace("import fusion; b=fusion.get_backend();", "import numpy;")
        elif extra is None:
            code = code.replace(" b=fusion.get_backend();", "")
        else:
            env["FUSION_BACKEND"] = extra
        times, numba_loaded = [], None
        for _ in range(reps):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout.split()
            times.append(float(out[0]))
            numba_loaded = out[1]
        rows.append(
            [
                label,
                f"{statistics.median(times) * 1e3:.0f} ms",
                f"{min(times) * 1e3:.0f} ms",
                numba_loaded,
            ]
        )
    print_table(
        f"import time, fresh processes ({reps} each)",
        rows,
        ["what", "median", "min", "numba imported"],
    )


_CLASH = textwrap.dedent("""
    import json, os, time
    import numpy as np
    import fusion
    b = fusion.get_backend("numba")
    b.parallel_min = int(os.environ["CLASH_PARALLEL_MIN"])
    f32, rng = fusion.float32, np.random.default_rng(0)
    def const(v, shape):
        return b.expand(b.full((1,) * len(shape), v, f32), shape)
    def step(x, w, v):
        h = b.maximum(b.contract(x, w), const(0.0, (x.shape[0], w.shape[1])))
        e = b.exp(b.mul(h, const(0.01, h.shape)))
        p = b.div(e, b.expand(b.reduce_sum(e, (1,)), e.shape))
        return b.reduce_sum(b.contract(p, v), (0, 1))
    out = {}
    for m, k, n, reps in [(128, 784, 256, 200), (1024, 1024, 1024, 15)]:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
        v = rng.standard_normal((n, 10)).astype(np.float32)
        for _ in range(3):
            step(x, w, v)
        ts = []
        for _ in range(reps):
            t = time.perf_counter(); step(x, w, v); ts.append(time.perf_counter() - t)
        out[f"{m}x{k}x{n}"] = float(np.median(ts))
    print(json.dumps(out))
""")


def bench_clash(reps, busy=0):
    """A step mixing BLAS products and parallel kernels under several thread policies, with
    every kernel forced parallel and with the default threshold; ``busy`` processes spinning
    alongside stand in for the other users of a shared machine."""
    policies = [
        ("fusion default (passive, BLAS auto)", {}),
        ("numba threads spin (OMP_WAIT_POLICY=ACTIVE)", {"OMP_WAIT_POLICY": "ACTIVE"}),
        ("BLAS keeps its threads", {"FUSION_NUMBA_BLAS_THREADS": "keep"}),
        (
            "spin + BLAS keeps threads",
            {"OMP_WAIT_POLICY": "ACTIVE", "FUSION_NUMBA_BLAS_THREADS": "keep"},
        ),
        ("BLAS 1 thread always", {"FUSION_NUMBA_BLAS_THREADS": "1"}),
        ("numba 1 thread", {"NUMBA_NUM_THREADS": "1"}),
    ]
    thresholds = {"all parallel": "1", "default threshold": None}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    results: dict[tuple[str, str], list[dict]] = {}
    try:
        for _ in range(reps):
            for name, extra in policies:
                for label, pmin in thresholds.items():
                    env = dict(os.environ, **extra)
                    env["CLASH_PARALLEL_MIN"] = pmin or str(config_parallel_min())
                    if "OMP_WAIT_POLICY" not in extra:
                        env.pop("OMP_WAIT_POLICY", None)
                    out = subprocess.run(
                        [sys.executable, "-c", _CLASH],
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                    results.setdefault((name, label), []).append(json.loads(out))
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    rows = []
    for name, _ in policies:
        row = [name]
        for label in thresholds:
            runs = results[(name, label)]
            row += [f"{statistics.median(r[key] for r in runs) * 1e3:.2f} ms" for key in runs[0]]
        rows.append(row)
    keys = list(results[(policies[0][0], "all parallel")][0])
    header = ["policy"] + [f"{key} ({label})" for label in thresholds for key in keys]
    print_table(
        f"thread clash: ms per step of 2 BLAS products + parallel kernels, median of {reps} "
        f"processes, {busy} busy processes alongside",
        rows,
        header,
    )


def thread_times(contenders: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Like :func:`median_times`, in CPU seconds of the calling thread (what one core spends,
    whatever else the machine runs)."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            start = time.thread_time()
            fn()
            times[name].append(time.thread_time() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def max_ulp_error(got: np.ndarray, want: np.ndarray, dtype) -> float:
    """The largest error of ``got`` against ``want`` (computed in a wider type) in units of
    ``dtype``'s epsilon, relative to the magnitude of ``want``."""
    wide = want.dtype
    scale = np.maximum(np.abs(want), np.finfo(dtype).tiny)
    return float(np.max(np.abs(got.astype(wide) - want) / scale) / np.finfo(dtype).eps)


def bench_details(reps):
    """The figures docs/numba.md quotes outside the tables: the cost of one small call, serial
    exp and log against numpy, a fresh output against a reused one, and exp and log accuracy."""
    from fusion.backends.numba.backend import NumbaBackend
    from fusion.backends.numba.pool import BufferPool

    rows = []
    numpy_backend = fusion.get_backend("numpy")
    serial = NumbaBackend()
    serial.parallel_min = 2**62  # every kernel on the calling thread
    small = np.random.default_rng(2).standard_normal(1000).astype(np.float32)
    t = median_times({"raw": lambda: np.add(small, small),
                      "numpy backend": lambda: numpy_backend.add(small, small),
                      "numba backend": lambda: serial.add(small, small)}, reps * 200)
    rows.append(["add, 1000 float32 (one call)",
                 *[f"{t[k] * 1e6:.2f} us (x{t['raw'] / t[k]:.2f})" for k in t]])

    x = np.random.default_rng(3).uniform(-5, 5, 10**6).astype(np.float32)
    positive = np.abs(x) + np.float32(0.1)
    for op, raw, data in (("exp", np.exp, x), ("log", np.log, positive)):
        kernel = getattr(serial, op)
        t = thread_times({"raw": lambda raw=raw, data=data: raw(data),
                          "numpy backend": lambda op=op, data=data:
                          getattr(numpy_backend, op)(data),
                          "numba backend": lambda kernel=kernel, data=data: kernel(data)}, reps)
        rows.append([f"{op}, 1e6 float32, serial (thread CPU time)",
                     *[f"{t[k] * 1e3:.2f} ms (x{t['raw'] / t[k]:.2f})" for k in t]])
    print_table("one call", rows, ["workload", "raw numpy", "numpy backend", "numba backend"])

    # a 40 MB output: a fresh mapping whose pages fault on first write, or a pooled block
    fresh = NumbaBackend()
    fresh.parallel_min = 2**62
    fresh.pool = BufferPool(0)
    pooled = NumbaBackend()
    pooled.parallel_min = 2**62
    big = np.random.default_rng(4).standard_normal(10**7).astype(np.float32)
    t = median_times({"fresh output": lambda: fresh.mul(big, big),
                      "reused output": lambda: pooled.mul(big, big)}, reps)
    fresh_ms, reused_ms = t["fresh output"] * 1e3, t["reused output"] * 1e3
    print_table("mul, two 1e7 float32, serial kernel (numba backend)",
                [[f"{fresh_ms:.2f} ms", f"{reused_ms:.2f} ms (x{fresh_ms / reused_ms:.2f})"]],
                ["fresh output (pool off)", "reused output (pool on)"])

    rows = []
    rng = np.random.default_rng(1)
    # the reference: float64 for float32, the platform's long double for float64 (on x86, 80
    # bits; where long double is float64, the float64 row compares with numpy's own results)
    for dtype, wide in ((np.float32, np.float64), (np.float64, np.longdouble)):
        hi = 88.0 if dtype == np.float32 else 709.0
        x = rng.uniform(-hi, hi, 200_000).astype(dtype)
        want = np.exp(x.astype(wide))
        normal = want > np.finfo(dtype).tiny
        y = np.exp(rng.uniform(-hi, hi, 200_000)).astype(dtype)
        y = y[(y > 0) & np.isfinite(y)]
        want_log = np.log(y.astype(wide))
        rows.append([np.dtype(dtype).name, np.dtype(wide).name,
                     f"{max_ulp_error(serial.exp(x)[normal], want[normal], dtype):.2f}",
                     f"{max_ulp_error(serial.log(y), want_log, dtype):.2f}",
                     f"{max_ulp_error(np.exp(x)[normal], want[normal], dtype):.2f}",
                     f"{max_ulp_error(np.log(y), want_log, dtype):.2f}"])
    print_table("accuracy over the range: largest relative error, in ulp of the dtype", rows,
                ["dtype", "reference", "numba exp", "numba log", "numpy exp", "numpy log"])


def config_parallel_min() -> int:
    from fusion.backends.numba import config

    return config.parallel_min()


def describe_machine(backends) -> None:
    import numba

    nb = backends["numba"]
    print("# Fusion backends benchmark\n")
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, numba {numba.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"numba threads {numba.get_num_threads()} (layer {numba.threading_layer()}), "
        f"parallel from {nb.parallel_min} elements, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')}, BLAS threads policy {nb.blas_threads}"
    )
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            print(f"note: {var}={os.environ[var]} is set")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no 1e7")
    parser.add_argument(
        "--busy", type=int, default=0, help="busy processes alongside the clash section"
    )
    parser.add_argument(
        "--only",
        default="elementwise,reductions,matmul,compile,import",
        help="comma-separated sections (also: clash, details)",
    )
    args = parser.parse_args(argv)
    sections = set(args.only.split(","))
    reps = 5 if args.quick else 15
    backends = {
        "numpy backend": fusion.get_backend("numpy"),
        "numba backend": fusion.get_backend("numba"),
    }
    describe_machine({"numba": backends["numba backend"]})
    if "elementwise" in sections:
        sizes = [10**6] if args.quick else [10**6, 10**7]
        bench_elementwise(backends, sizes, reps)
    if "reductions" in sections:
        bench_reductions(backends, reps)
    if "matmul" in sections:
        bench_matmul(backends, reps)
    if "compile" in sections:
        bench_compile(3 if args.quick else 5)
    if "import" in sections:
        bench_import(5 if args.quick else 11)
    if "clash" in sections:
        bench_clash(1 if args.quick else 3, args.busy)
    if "details" in sections:
        bench_details(5 if args.quick else 15)


if __name__ == "__main__":
    main()
