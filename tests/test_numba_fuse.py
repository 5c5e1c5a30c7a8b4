"""The numba backend's fused kernels: every loop shape it generates, serial and split across
threads, against the reference evaluator (numpy, one instruction at a time), and its disk
cache across processes."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import fusion
from fusion.core.kernel import evaluate
from fusion.core.schedule import schedule

pytest.importorskip("numba")
from fusion.backends.numba import fuse  # noqa: E402

rng = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def lazy_at_every_size(monkeypatch):
    """numba runs work below its ``fuse_min`` when it is made; here every graph stays lazy, so
    that the scheduler cuts these small expressions into the kernels under test."""
    monkeypatch.setattr(fusion.get_backend("numba"), "fuse_min", 0)


def _t(shape, dtype="float32", low=-3, high=3):
    if dtype.startswith("int"):
        data = rng.integers(low, high, shape).astype(dtype)
    else:
        data = rng.uniform(low, high, shape).astype(dtype)
    return fusion.Tensor(data, backend="numba")


# name, inputs, expression: each schedules kernels whose inputs are realised tensors
CASES = [
    ("chain_sum_all", lambda: [_t((37, 51))], lambda x: ((x * 2 + 1).exp() * x).sum()),
    ("row_max", lambda: [_t((33, 65))], lambda x: (x * 3).max(-1)),
    ("row_sum_broadcast", lambda: [_t((33, 65)), _t((33, 1))],
     lambda x, m: (x - m).exp().sum(-1, keepdim=True)),
    ("normalise", lambda: [_t((33, 65)), _t((33, 1)), _t((33, 1), low=1, high=2)],
     lambda x, m, s: (x - m).exp() / s),
    ("bias_relu", lambda: [_t((40, 17)), _t((17,))], lambda x, b: (x + b).relu()),
    ("transposed_sum", lambda: [_t((29, 31))], lambda x: (x.T * 3).sum(1)),
    ("transposed_max_all", lambda: [_t((29, 31))], lambda x: (x.T - 1).max()),
    ("flipped", lambda: [_t((30, 20))], lambda x: x[::-1, 2:19].sqrt().sum(1)),
    ("padded_sum", lambda: [_t((12, 9))],
     lambda x: x.pad(((1, 2), (3, 0)), value=-1.5).exp().sum(-1)),
    ("three_d_trailing", lambda: [_t((5, 6, 7))], lambda x: x.sin().sum((1, 2))),
    ("int_sum", lambda: [_t((11, 13), "int32", -50, 50)], lambda x: (x * x - 3).sum(-1)),
    ("int_max_all", lambda: [_t((11, 13), "int64", -50, 50)], lambda x: (x * 7).max()),
    ("bool_count", lambda: [_t((11, 13))], lambda x: (x < 0).cast("int32").sum(-1)),
    # column kernels: reductions over leading axes, one row of partial results per thread
    ("column_sum", lambda: [_t((37, 51))], lambda x: (x * 2 + 1).sum(0)),
    ("column_max_3d", lambda: [_t((5, 6, 7))], lambda x: x.exp().max((0, 1))),
    ("column_sum_3d_one_axis", lambda: [_t((9, 4, 3))], lambda x: (x - 1).sum(0)),
    ("column_sum_transposed", lambda: [_t((29, 31))], lambda x: (x.T - 1).sum(0)),
    ("column_sum_flipped", lambda: [_t((30, 20))], lambda x: x[::-1, 2:19].sqrt().sum(0)),
    ("column_sum_padded", lambda: [_t((12, 9))],
     lambda x: x.pad(((1, 2), (3, 0)), value=-1.5).exp().sum(0)),
    ("column_bias_grad", lambda: [_t((40, 17)), _t((17,))], lambda x, b: (x + b).relu().sum(0)),
    ("column_broadcast_rows", lambda: [_t((33, 65)), _t((33, 1))], lambda x, m: (x * m).sum(0)),
    ("column_single_row", lambda: [_t((1, 5))], lambda x: (x * 3).sum(0)),
    ("column_single_column", lambda: [_t((7, 1))], lambda x: (x * 3).max(0)),
    ("int_column_sum", lambda: [_t((11, 13), "int32", -50, 50)], lambda x: (x * x - 3).sum(0)),
    ("int_column_max", lambda: [_t((11, 13), "int64", -50, 50)], lambda x: (x * 7).max(0)),
    ("bool_column_count", lambda: [_t((11, 13))], lambda x: (x < 0).cast("int32").sum(0)),
    # row kernels: reductions over the last axis inside the kernel that reads them back
    ("softmax_rows", lambda: [_t((33, 65))], lambda x: x.softmax(-1)),
    ("softmax_3d", lambda: [_t((4, 5, 37))], lambda x: (x * 2).softmax(-1)),
    ("softmax_transposed", lambda: [_t((29, 31))], lambda x: x.T.softmax(-1)),
    ("softmax_padded", lambda: [_t((12, 9))],
     lambda x: x.pad(((1, 2), (3, 0)), value=-1.5).softmax(-1)),
    ("softmax_broadcast_row", lambda: [_t((40, 17)), _t((17,))], lambda x, b: (x + b).softmax(-1)),
    ("shifted_sum", lambda: [_t((33, 65), high=30)],
     lambda x: (x - x.max(-1, keepdim=True)).exp().sum(-1)),
    ("centred_square_sum", lambda: [_t((21, 50), low=100, high=101)],
     lambda x: ((x - x.sum(-1, keepdim=True)) ** 2).sum(-1)),
    ("int_rows", lambda: [_t((11, 13), "int32", -50, 50)],
     lambda x: x - x.max(-1, keepdim=True) + x.sum(-1, keepdim=True)),
]


def _launches(fn, tensors):
    items = schedule([fn(*tensors).data], recompute=True, rows=True)
    launches = [item for item in items if item.fusable
                and all(b._data is not None for b in item.inputs)]
    assert launches, "the expression schedules no kernel over realised inputs"
    return launches


@pytest.mark.parametrize("name, make, fn", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("parallel, threads", [(False, 1), (True, 1), (True, 2), (True, 5)])
def test_fused_kernel_equals_the_reference(name, make, fn, parallel, threads):
    global rng
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same data however tests run
    tensors = make()
    for item in _launches(fn, tensors):
        assert fuse.supported(item.kernel), str(item.kernel)
        inputs = [b._data for b in item.inputs]
        got = fuse.run(item.kernel, inputs, item.views, item.constants, item.shape,
                       parallel, threads)
        want = evaluate(item.kernel, inputs, item.views, item.constants, item.shape)
        assert got.shape == want.shape and got.dtype == want.dtype
        if want.dtype.kind == "f":
            # the kernel accumulates in float64, the reference sums in float32: the reference's
            # rounding error grows with the number of terms, and shows where terms cancel
            terms = math.prod(item.shape) // max(1, math.prod(want.shape))
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6 * terms)
        else:
            np.testing.assert_array_equal(got, want)


def test_nan_reaches_fused_maxima_and_sums():
    data = rng.uniform(-1, 1, (8, 40)).astype(np.float32)
    data[3, 17] = np.nan
    data[5, 2] = np.inf
    x = fusion.Tensor(data, backend="numba")
    for fn in (lambda x: (x * 2).max(-1), lambda x: (x * 2).max(), lambda x: (x + 1).sum(-1)):
        for item in _launches(fn, [x]):
            inputs = [b._data for b in item.inputs]
            for parallel in (False, True):
                got = fuse.run(item.kernel, inputs, item.views, item.constants, item.shape,
                               parallel, 3)
                want = evaluate(item.kernel, inputs, item.views, item.constants, item.shape)
                np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
                np.testing.assert_allclose(got, want, rtol=2e-6)


def test_generated_source_is_specialised_and_readable():
    x, b = _t((40, 17)), _t((17,))
    (item,) = _launches(lambda x, b: (x + b).relu(), [x, b])
    inner = fuse.inner_kinds(item.kernel, item.views)
    assert inner == ("c", "1")  # the bias is read in order along each row
    serial = fuse.source(item.kernel, False, inner)
    parallel = fuse.source(item.kernel, True, inner)
    assert "prange" in parallel and "prange" not in serial
    m = _t((33, 1))
    (item,) = _launches(lambda x, m: (x - m).exp(), [_t((33, 65)), m])
    inner = fuse.inner_kinds(item.kernel, item.views)
    assert inner == ("c", "0")
    text = fuse.source(item.kernel, False, inner)
    # the broadcast value is loaded once per row, outside the innermost loop
    load = next(i for i, line in enumerate(text.splitlines()) if line.strip().startswith("x1 ="))
    loop = next(i for i, line in enumerate(text.splitlines()) if "for i1 in" in line)
    assert load < loop


def test_unsupported_kernels_are_left_to_the_primitives():
    x = _t((6, 7, 5))
    (item,) = _launches(lambda x: (x * 2).sum(1), [x])
    assert not fuse.supported(item.kernel)  # a reduction over a middle axis
    backend = fusion.get_backend("numba")
    assert not backend.fusable(item.kernel, item.shape)


def test_kernels_are_cached_on_disk_across_processes(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, fusion
        from fusion.backends.numba import fuse
        from fusion.core.schedule import schedule
        fusion.get_backend("numba").fuse_min = 0  # small work stays lazy, to be scheduled
        x = fusion.Tensor(np.arange(12, dtype=np.float32).reshape(3, 4), backend="numba")
        items = schedule([((x * 3 + 1).exp() * x).sum(-1).data], recompute=True)
        (item,) = [i for i in items if i.fusable]
        out = fuse.run(item.kernel, [b._data for b in item.inputs], item.views,
                       item.constants, item.shape, False)
        kernel = fuse.compile_kernel(item.kernel, False, fuse.inner_kinds(item.kernel,
                                                                         item.views))
        print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))
        print(float(out[0, 0]))
    """)
    env = dict(os.environ, FUSION_NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("PYTEST_XDIST_WORKER", None)
    first, second = (subprocess.run([sys.executable, "-c", script], env=env, text=True,
                                    capture_output=True, timeout=300, check=True).stdout.split()
                     for _ in range(2))
    assert first[:2] == ["0", "1"]  # compiled by the first process
    assert second[:2] == ["1", "0"]  # loaded from disk by the second
    want = float(sum(np.exp(np.float32(v) * 3 + 1) * v for v in range(4)))
    assert float(second[2]) == pytest.approx(want, rel=1e-5)
    assert list((tmp_path / "fused").glob("fusion_fused_*.py"))


ROW_CASES = [c for c in CASES if c[0] in ("softmax_rows", "softmax_3d", "softmax_transposed",
                                           "softmax_padded", "softmax_broadcast_row",
                                           "shifted_sum", "centred_square_sum", "int_rows")]


@pytest.mark.parametrize("name, make, fn", ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_row_reductions_run_inside_their_readers_kernel(name, make, fn):
    (item,) = _launches(fn, make())
    assert fuse._row_kernel(item.kernel), str(item.kernel)
    assert fuse.supported(item.kernel)


def _realised(fn, *arrays):
    """``fn`` on numba tensors of ``arrays``, realised at once: the result and its kernels."""
    from fusion.core import lazy

    tensors = [fusion.Tensor(a, backend="numba") for a in arrays]
    lazy.stats.reset()
    out = fn(*tensors)
    if not isinstance(out, tuple):
        out = (out,)
    fusion.realize(*out)
    return [o.numpy() for o in out], lazy.stats.kernels


def _softmax_np(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_row_softmax_is_one_kernel_end_to_end():
    x = np.random.default_rng(1).normal(0, 3, (300, 129)).astype(np.float32)
    (got,), kernels = _realised(lambda t: t.softmax(-1), x)
    assert kernels == 1
    np.testing.assert_allclose(got, _softmax_np(x), rtol=2e-6, atol=1e-7)


def test_row_reduction_read_by_two_kernels_is_stored_once():
    # the row maximum's broadcast is read by the softmax and by a column sum: the column sum
    # reduces another axis, so the maximum is its own kernel, stored and read by both
    x = np.random.default_rng(2).normal(0, 1, (300, 120)).astype(np.float32)

    def fn(t):
        m = t.max(-1, keepdim=True)
        return (t - m).exp(), (t - m).sum(0)

    (soft, cols), _ = _realised(fn, x)
    m = x.max(-1, keepdims=True)
    np.testing.assert_allclose(soft, np.exp(x - m), rtol=2e-6)
    np.testing.assert_allclose(cols, (x - m).sum(0), rtol=1e-5, atol=1e-4)
    t = fusion.Tensor(x, backend="numba")
    both = schedule([out.data for out in fn(t)], recompute=False, rows=True)
    assert [i.kernel.output.op.value for i in both if i.kernel is not None][0] == "reduce_max"
    alone = schedule([fn(t)[0].data], recompute=False, rows=True)
    assert len(alone) == 1 and fuse._row_kernel(alone[0].kernel)  # one row kernel


def test_debug_level_two_prints_each_kernels_source_once(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, fusion
        x = fusion.Tensor(np.ones((300, 200), np.float32), backend="numba")
        for _ in range(2):
            print(float(x.softmax(-1).numpy()[0, 0]))
    """)
    env = dict(os.environ, FUSION_NUMBA_CACHE_DIR=str(tmp_path), FUSION_DEBUG="2")
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, text=True,
                          capture_output=True, timeout=300, check=True)
    assert [float(v) for v in done.stdout.split()] == [pytest.approx(1 / 200)] * 2
    err = done.stderr
    assert err.count("fusion: source of e_max_") == 1  # the first launch only
    assert "def fused(out, shape, in0, st0, off0):" in err
    assert "vexp(t2)" in err and "reduce_sum" in err  # the source and the kernel it computes
    assert err.count("fusion: e_max_") == 2  # each launch, as at level 1


def test_transcendental_kernels_vectorise_without_library_calls(tmp_path):
    # exp, and tanh, sigmoid and gelu as the frontend composes them (exp, WHERE, division),
    # and a row softmax: each loop must compile to SIMD arithmetic on floats, calling nothing
    # but LLVM's arithmetic intrinsics (a libm call per element would block vectorisation)
    script = textwrap.dedent("""
        import re
        import numpy as np, fusion
        from fusion.backends.numba import fuse
        from fusion.core.schedule import schedule
        x = fusion.Tensor(np.ones((64, 512), np.float32), backend="numba")
        for fn in (lambda x: x.exp(), lambda x: x.tanh(), lambda x: x.sigmoid(),
                   lambda x: x.gelu(), lambda x: x.softmax(-1)):
            (item,) = schedule([fn(x).data], recompute=False, rows=True)
            inner = fuse.inner_kinds(item.kernel, item.views)
            fuse.run(item.kernel, [b._data for b in item.inputs], item.views,
                     item.constants, item.shape, False)
            kernel = fuse.compile_kernel(item.kernel, False, inner)
            llvm = kernel.overloads[kernel.signatures[0]].library.get_llvm_str()
            names = {re.search(r"@([\\w.$]+)\\(", f).group(1): f
                     for f in llvm.split("\\ndefine ")[1:]}
            (body,) = [f for name, f in names.items() if name.startswith("_ZN")
                       and "fused" in name and "cpython" not in name]
            calls = set(re.findall(r"call [^@]*@([\\w.$]+)", body))
            vectors = len(re.findall(r"<\\d+ x float>", body))
            print(item.kernel.name, vectors, ",".join(sorted(calls)))
    """)
    env = dict(os.environ, FUSION_NUMBA_CACHE_DIR=str(tmp_path))  # compiled here: inspectable
    done = subprocess.run([sys.executable, "-c", script], env=env, text=True,
                          capture_output=True, timeout=300, check=True)
    lines = done.stdout.split("\n")[:-1]
    assert len(lines) == 5
    for line in lines:
        name, vectors, calls = (line.split(" ") + [""])[:3]
        assert int(vectors) > 0, line
        for call in filter(None, calls.split(",")):
            assert call.startswith("llvm."), line
            # LLVM lowers its math intrinsics (llvm.exp, llvm.sin, ...) to libm calls per lane
            assert not re.match(r"llvm\.(exp|exp2|log|log2|log10|pow|sin|cos|tan|tanh)\.",
                                call), line


def test_column_sums_accumulate_in_float64_where_float32_terms_cancel():
    # terms near +-100 summed down a column of 20001 rows: float32 accumulation in order is off
    # by about 1e-3; the kernel's float64 partials keep the error at the final rounding
    rng = np.random.default_rng(3)
    x = rng.uniform(99.5, 100.5, (20001, 37)).astype(np.float32)
    x[1::2] *= -1
    exact = x.astype(np.float64).sum(0)
    for parallel, threads in ((False, 1), (True, 3)):
        (item,) = _launches(lambda t: (t * 1).sum(0), [fusion.Tensor(x, backend="numba")])
        got = fuse.run(item.kernel, [b._data for b in item.inputs], item.views,
                       item.constants, item.shape, parallel, threads)
        np.testing.assert_allclose(got.reshape(-1), exact, rtol=1e-6, atol=1e-6 * 100)


def test_column_sum_end_to_end_is_one_kernel():
    x = np.random.default_rng(4).normal(0, 1, (5000, 129)).astype(np.float32)
    b = np.random.default_rng(5).normal(0, 1, (129,)).astype(np.float32)
    (got,), kernels = _realised(lambda t, c: (t + c).relu().sum(0), x, b)
    assert kernels == 1
    want = np.maximum(x.astype(np.float64) + b, 0).sum(0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("name, make, fn", CASES, ids=[c[0] for c in CASES])
def test_prepared_launch_equals_the_reference(name, make, fn):
    # what a replay runs: the arguments prepared once, launched twice into one output
    global rng
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for item in _launches(fn, make()):
        inputs = [b._data for b in item.inputs]
        want = evaluate(item.kernel, inputs, item.views, item.constants, item.shape)
        for parallel, threads in ((False, 1), (True, 3)):
            out = np.empty(want.shape, want.dtype)
            launch = fuse.launcher(item.kernel, inputs, item.views, item.constants,
                                   item.shape, parallel, threads, out)
            assert launch is not None, str(item.kernel)
            launch()
            launch()  # partial results start afresh each time
            if want.dtype.kind == "f":
                terms = math.prod(item.shape) // max(1, math.prod(want.shape))
                np.testing.assert_allclose(out, want, rtol=2e-6, atol=1e-6 * terms)
            else:
                np.testing.assert_array_equal(out, want)


def test_a_row_kernel_is_not_prepared_to_write_over_its_input():
    x = _t((33, 65))
    (item,) = _launches(lambda x: x.softmax(-1), [x])
    data = item.inputs[0]._data
    # the output row is written (the exponentials) before the last pass reads the input
    assert fuse.launcher(item.kernel, [data], item.views, item.constants, item.shape,
                         False, 1, data) is None


def test_read_only_and_writable_inputs_share_one_compilation():
    x, m = _t((33, 65)), _t((33, 1))
    (item,) = _launches(lambda x, m: (x - m).exp().sum(-1), [x, m])
    inputs = [b._data for b in item.inputs]
    frozen = []
    for a in inputs:
        view = a.view()
        view.flags.writeable = False
        frozen.append(view)
    writable = [a.copy() for a in inputs]
    args = (item.views, item.constants, item.shape, False)
    want = evaluate(item.kernel, inputs, *args[:3])
    kernel = fuse.compile_kernel(item.kernel, False, fuse.inner_kinds(item.kernel, item.views))
    counts = []
    for case in (writable, frozen, [writable[0], frozen[1]]):
        np.testing.assert_allclose(fuse.run(item.kernel, case, *args), want, rtol=1e-5)
        counts.append(len(kernel.signatures))
    out = np.empty(want.shape, want.dtype)
    fuse.launcher(item.kernel, writable, item.views, item.constants, item.shape, False, 1,
                  out)()  # as a replay of fusion.jit runs it
    np.testing.assert_allclose(out, want, rtol=1e-5)
    counts.append(len(kernel.signatures))
    assert counts == [1, 1, 1, 1]
    assert all(a.flags.writeable for a in writable)
