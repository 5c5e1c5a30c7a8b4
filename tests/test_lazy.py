"""Laziness: the graph, views, the scheduler, kernels and realisation points.

Two fusing backends are exercised: numba (its elementwise kernels compiled whole, here at
every size; reductions primitive by primitive) and ``numpy_fused``, a reference backend
registered here that runs each kernel whole with :func:`fusion.core.kernel.evaluate`. Every
expected value is either numpy's or the same expression executed eagerly.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fusion
import fusion.nn as nn
import fusion.optim as optim
from fusion.backends.numpy import NumpyBackend
from fusion.core import lazy as lazy_mode
from fusion.core.backend import registry
from fusion.core.kernel import Kernel, Leaf, evaluate, read
from fusion.core.ops import UnaryOp
from fusion.core.schedule import schedule
from fusion.core.view import View
from fusion.testing.suite import fused as fused_suite


class ReferenceFused(NumpyBackend):
    """numpy, lazy, running every kernel whole through the reference evaluator."""

    lazy = True
    capabilities = NumpyBackend.capabilities | {"fuse"}

    def __init__(self):
        self.fused = 0

    def fuse(self, kernel, inputs, views, constants, shape):
        self.fused += 1
        return evaluate(kernel, inputs, views, constants, shape)


class Counting(NumpyBackend):
    """numpy, lazy, without ``fuse``: counts the primitives it is asked to run."""

    lazy = True

    def __init__(self):
        self.calls: dict[str, int] = {}

    def __getattribute__(self, name):
        value = super().__getattribute__(name)
        if callable(value) and not name.startswith("_") and name != "calls":
            calls = super().__getattribute__("calls")

            def counted(*args, **kwargs):
                calls[name] = calls.get(name, 0) + 1
                return value(*args, **kwargs)
            return counted
        return value


#: Registered for this module's tests only (a backend left registered would reach tests that
#: start fresh processes, where it does not exist).
LAZY_BACKENDS = ["numpy_fused", *(["numba"] if "numba" in fusion.available_backends() else [])]


@contextlib.contextmanager
def registered(name: str, backend):
    registry.load()
    registry.register(name, backend, plugin="tests")
    try:
        yield fusion.get_backend(name)
    finally:
        registry.unregister(name)


@pytest.fixture(scope="module", autouse=True)
def reference_backend():
    with registered("numpy_fused", ReferenceFused()) as backend:
        yield backend


@pytest.fixture(autouse=True)
def fuse_every_size(monkeypatch):
    """numba compiles only kernels of many elements; here every kernel, however small."""
    if "numba" in fusion.available_backends():
        monkeypatch.setattr(fusion.get_backend("numba"), "fuse_min", 0)


@pytest.mark.parametrize("lazy_backend", LAZY_BACKENDS)
@pytest.mark.parametrize("name, inputs, fn, ref", fused_suite.EXPRESSIONS,
                         ids=[e[0] for e in fused_suite.EXPRESSIONS])
def test_fused_kernel_section(lazy_backend, name, inputs, fn, ref):
    """The conformance section for fusing backends, on the reference backend and on numba
    with every kernel compiled (called directly: the reference exists only in this module)."""
    section = fused_suite.TestFusedKernels()
    section.test_expression(lazy_backend, name, inputs, fn, ref)
    section.test_each_kernel_matches_the_reference(lazy_backend, name, inputs, fn, ref)


# --- views ------------------------------------------------------------------------------------
movements = st.lists(st.sampled_from(["permute", "flip", "shrink", "pad", "expand", "reshape"]),
                     max_size=5)


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), steps=movements,
       seed=st.integers(0, 1000))
def test_composed_views_read_what_numpy_movement_gives(shape, steps, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 100, shape)
    expected = base
    view = View.contiguous(tuple(shape))
    for step in steps:
        nd = expected.ndim
        if step == "permute":
            order = tuple(int(i) for i in rng.permutation(nd))
            expected, view = expected.transpose(order), view.permute(order)
        elif step == "flip":
            axes = (int(rng.integers(nd)),)
            expected, view = np.flip(expected, axes), view.flip(axes)
        elif step == "shrink":
            bounds = []
            for n in expected.shape:
                lo = int(rng.integers(0, n))
                bounds.append((lo, int(rng.integers(lo + 1, n + 1))))
            expected = expected[tuple(slice(a, b) for a, b in bounds)]
            view = view.shrink(tuple(bounds))
        elif step == "pad":
            widths = tuple((int(rng.integers(0, 2)), int(rng.integers(0, 2)))
                           for _ in range(nd))
            padded = view.pad(widths, -1)
            if padded is None:
                continue
            expected, view = np.pad(expected, widths, constant_values=-1), padded
        elif step == "expand":
            new = tuple(3 if n == 1 else n for n in expected.shape)
            expected, view = np.broadcast_to(expected, new), view.expand(new)
        else:
            new = (expected.size,) if nd > 1 else (*expected.shape, 1)
            reshaped = view.reshape(new)
            if reshaped is None:  # the scheduler stores a copy first; so does this test
                view = View.contiguous(expected.shape).reshape(new)
                base = np.ascontiguousarray(expected)
            else:
                view = reshaped
            expected = expected.reshape(new)
        assert view.shape == expected.shape
        np.testing.assert_array_equal(read(base, view), expected)


def test_reshape_of_a_transposed_view_is_no_view():
    view = View.contiguous((3, 4)).permute((1, 0))
    assert view.reshape((12,)) is None
    assert view.reshape((4, 3, 1)) is not None  # adding a size-1 axis is still a view


# --- lazy against eager, on random expression graphs ------------------------------------------
UNARY = ["exp", "log", "sqrt", "sin", "neg", "reciprocal", "relu", "abs", "sigmoid", "square"]
BINARY = ["add", "sub", "mul", "div", "maximum", "lt", "eq", "where"]


def _build(data, backend: str, arrays: list[np.ndarray], dtype: str):
    """A random graph over ``arrays`` drawn by hypothesis; returns the outputs."""
    nodes = [fusion.Tensor(a, backend=backend) for a in arrays]
    for _ in range(data.draw(st.integers(1, 10), label="ops")):
        kind = data.draw(st.sampled_from(["unary", "binary", "movement", "reduce"]))
        x = data.draw(st.sampled_from(nodes))
        if kind == "unary":
            name = data.draw(st.sampled_from(UNARY if dtype.startswith("float")
                                             else ["neg", "square", "abs", "relu"]))
            out = getattr(x, name)()
        elif kind == "binary":
            y = data.draw(st.sampled_from(nodes))
            try:
                shape = fusion.broadcast_shape(x.shape, y.shape)
            except ValueError:
                continue
            if len(shape) > 4:
                continue
            name = data.draw(st.sampled_from(BINARY))
            if name == "where":
                out = (x < y).where(x, y * 2)
            elif name == "lt":
                out = (x < y).cast(x.dtype)
            elif name == "eq":
                out = (x == y).cast(x.dtype)
            else:
                out = getattr(x, name)(y)
        elif kind == "movement":
            if x.ndim == 0:
                continue
            move = data.draw(st.sampled_from(["T", "flip", "slice", "pad", "unsqueeze",
                                              "flatten"]))
            if move == "T":
                out = x.T
            elif move == "flip":
                out = x.flip(data.draw(st.integers(0, x.ndim - 1)))
            elif move == "slice":
                out = x[::-1] if x.shape[0] > 1 else x[0:1]
            elif move == "pad":
                out = x.pad([(1, 0)] * x.ndim, value=data.draw(st.sampled_from([0, 2])))
            elif move == "unsqueeze":
                out = x.unsqueeze(0).expand(2, *x.shape) if x.ndim < 4 else x
            else:
                out = x.flatten()
        else:
            if x.ndim == 0:
                continue
            axis = data.draw(st.integers(0, x.ndim - 1))
            out = x.max(axis, keepdim=True) if data.draw(st.booleans()) else \
                x.sum(axis, keepdim=True)
        if out.dtype.name != dtype and out.dtype.name != "bool":
            out = out.cast(dtype)
        nodes.append(out)
    return nodes[len(arrays):] or nodes


def _special_values(rng, shape, dtype: str) -> np.ndarray:
    if dtype.startswith("float"):
        values = rng.uniform(-3, 3, shape).astype(dtype)
        flat = values.reshape(-1)
        for i, special in zip(range(flat.size), [np.nan, np.inf, -np.inf, 0.0], strict=False):
            if rng.random() < 0.3:
                flat[int(rng.integers(flat.size))] = special if i < 4 else 0.0
        return values
    return rng.integers(-4, 5, shape).astype(dtype)


@pytest.mark.parametrize("lazy_backend", LAZY_BACKENDS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), dtype=st.sampled_from(["float32", "float64", "int32", "int64"]),
       seed=st.integers(0, 10_000))
def test_random_graphs_lazy_equal_eager(lazy_backend, data, dtype, seed):
    rng = np.random.default_rng(seed)
    shapes = data.draw(st.lists(st.lists(st.integers(1, 3), min_size=0, max_size=3),
                                min_size=1, max_size=3), label="shapes")
    arrays = [_special_values(rng, tuple(s), dtype) for s in shapes]
    choices: list = []
    with np.errstate(all="ignore"):
        with fusion.eager():
            expected = [t.numpy() for t in _build(_Choices(data, choices), lazy_backend, arrays,
                                                  dtype)]
        lazy = _build(_Choices(None, choices), lazy_backend, arrays, dtype)
        fusion.realize(*lazy)
        got = [t.numpy() for t in lazy]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        if g.dtype.kind == "f":
            # sums may add in another order through a view than through a copy
            tol = 1e-5 if g.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(g, e, rtol=tol, atol=tol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, e)


class _Choices:
    """Hands :func:`_build` the same choices twice: drawn from hypothesis and recorded the
    first time, replayed the second (so the eager and the lazy graph are one graph)."""

    def __init__(self, data, log: list):
        self.data, self.log, self.position = data, log, 0

    def draw(self, strategy, label=None):
        if self.data is None:
            self.position += 1
            return self.log[self.position - 1]
        value = self.data.draw(strategy, label=label)
        self.log.append(value)
        return value


# --- sharing, recomputation, kernels ------------------------------------------------------------
def test_a_reused_node_runs_once():
    with registered("numpy_counting", Counting()) as counting:
        _check_reused_node_runs_once(counting)


def _check_reused_node_runs_once(counting):
    x = fusion.Tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
                      backend="numpy_counting")
    y = x.exp()
    z = y
    for _ in range(20):
        z = z + y * y
    w = y.sum() + z.sum()
    counting.calls.clear()
    expected_y = np.exp(x.numpy())
    expected_z = expected_y
    for _ in range(20):
        expected_z = expected_z + expected_y * expected_y
    np.testing.assert_allclose(w.item(), expected_y.sum() + expected_z.sum(), rtol=1e-5)
    assert counting.calls["exp"] == 1
    counting.calls.clear()
    (y * 2).numpy()  # y was realised with w: not computed again
    assert counting.calls.get("exp", 0) == 0


def test_a_reused_node_is_one_instruction_of_its_kernel():
    x = fusion.Tensor(np.ones((4, 4), np.float32), backend="numpy_fused")
    y = x.exp()
    z = y
    for _ in range(30):  # 2**30 paths through the graph: a tree walk would never end
        z = z * y + y
    (item,) = schedule([z.data])
    assert sum(1 for i in item.kernel.instructions if i.op is UnaryOp.EXP) == 1
    np.testing.assert_array_equal(z.numpy(), _repeat(np.exp(np.float32(1)), 30))


def _repeat(y, n):
    z = np.full((4, 4), y, np.float32)
    for _ in range(n):
        z = z * y + y
    return z


def test_kernels_of_the_issue_workloads():
    x = fusion.Tensor(np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32),
                      backend="numpy_fused")
    assert len(schedule([((x * 2 + 1).exp() * x).sum().data])) == 2  # the kernel, a reshape
    gelu = x.gelu()
    assert len(schedule([gelu.data])) == 1
    softmax = x.softmax(-1)
    kernels = [i for i in schedule([softmax.data], recompute=True) if i.kernel is not None]
    # max, sum of exp (recomputed), exp / sum: no intermediate written out
    assert [i.kernel.name[0] for i in kernels] == ["r", "r", "e"]
    np.testing.assert_allclose(
        softmax.numpy(), np.exp(x.numpy() - x.numpy().max(-1, keepdims=True))
        / np.exp(x.numpy() - x.numpy().max(-1, keepdims=True)).sum(-1, keepdims=True),
        rtol=1e-5)


def test_kernel_is_keyed_by_structure_not_sizes_or_constants():
    def kernel(n, c):
        x = fusion.Tensor(np.ones((n, 3), np.float32), backend="numpy_fused")
        (item,) = [i for i in schedule([((x * c).exp() + 1).sum(1).data]) if i.kernel]
        return item

    a, b, c = kernel(8, 2.0), kernel(16, 2.0), kernel(8, 3.5)
    assert a.kernel == b.kernel == c.kernel and hash(a.kernel) == hash(c.kernel)
    assert a.kernel.key == c.kernel.key and a.constants != c.constants
    assert a.shape != b.shape
    other = fusion.Tensor(np.ones((8, 3), np.float32), backend="numpy_fused")
    (d,) = [i for i in schedule([((other * 2.0).sin() + 1).sum(1).data]) if i.kernel]
    assert d.kernel != a.kernel
    text = str(a.kernel)
    assert "exp" in text and "reduce_sum" in text and "input0 float32" in text
    assert isinstance(a.kernel, Kernel) and a.kernel.instructions[0].op is Leaf.INPUT


def test_bias_and_row_maxima_are_read_through_views_not_materialised():
    x = fusion.Tensor(np.ones((8, 5), np.float32), backend="numpy_fused")
    b = fusion.Tensor(np.arange(5, dtype=np.float32), backend="numpy_fused")
    items = schedule([(x + b).relu().data])
    (item,) = items
    assert [v.strides for v in item.views] == [(5, 1), (0, 1)]


# --- errors, modes -----------------------------------------------------------------------------
@pytest.mark.parametrize("lazy_backend", LAZY_BACKENDS)
def test_shape_errors_are_raised_where_the_op_is_written(lazy_backend):
    a = fusion.ones(2, 3, backend=lazy_backend) * 2
    b = fusion.ones(4, backend=lazy_backend).exp()
    with pytest.raises(ValueError, match=r"cannot broadcast \(2, 3\) with \(4,\)") as info:
        a + b
    here = "test_shape_errors_are_raised_where_the_op_is_written"
    assert info.traceback[0].frame.code.name == here
    assert not any("realize" in entry.frame.code.name for entry in info.traceback)
    with pytest.raises(ValueError, match="cannot reshape"):
        a.reshape(5)
    with pytest.raises(ValueError, match="matmul"):
        a @ a
    assert not a.data.realized and not b.data.realized


@pytest.mark.skipif("numba" not in LAZY_BACKENDS, reason="needs the numba backend")
def test_work_below_fuse_min_runs_when_made(monkeypatch):
    """numba fuses kernels from ``fuse_min`` elements on: smaller work whose sources are
    computed runs at once, larger work stays lazy, and the values are numpy's."""
    backend = fusion.get_backend("numba")
    monkeypatch.setattr(backend, "fuse_min", 64)
    small = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    x = fusion.Tensor(small, backend="numba")
    y = (x * 2 - 1).exp().sum(1)
    assert y.data.realized and not y.data.srcs
    np.testing.assert_allclose(y.numpy(), np.exp(small * 2 - 1).sum(1), rtol=1e-6)
    big = np.linspace(-1, 1, 128, dtype=np.float32).reshape(8, 16)
    b = fusion.Tensor(big, backend="numba")
    z = (b * 3).exp()
    assert not z.data.realized  # 128 elements: one kernel, when needed
    assert not b.sum(1).data.realized  # a reduction counts the elements it reads
    np.testing.assert_allclose(z.numpy(), np.exp(big * 3), rtol=1e-6)
    monkeypatch.setattr(lazy_mode.stats, "tracking", True)  # counting kernels: all lazy
    assert not (x * 2).data.realized


@pytest.mark.skipif("numba" not in LAZY_BACKENDS, reason="needs the numba backend")
def test_a_small_constant_expanded_into_a_large_kernel_stays_a_scalar(monkeypatch):
    from fusion.core.buffer import Buffer

    backend = fusion.get_backend("numba")
    monkeypatch.setattr(backend, "fuse_min", 64)
    b = Buffer.from_numpy(backend, np.ones((8, 16), np.float32), fusion.float32)
    three = Buffer.full(backend, (), 3.0, fusion.float32).reshape((1, 1)).expand((8, 16))
    assert not three.realized
    out = b.mul(three)
    (item,) = schedule([out])
    ops = [ins.op for ins in item.kernel.instructions]
    assert ops.count(Leaf.CONST) == 1 and ops.count(Leaf.INPUT) == 1
    np.testing.assert_array_equal(out.numpy(), np.full((8, 16), 3.0, np.float32))


@pytest.mark.skipif("numba" not in LAZY_BACKENDS, reason="needs the numba backend")
def test_a_contraction_runs_when_made_and_realises_what_it_reads(monkeypatch):
    backend = fusion.get_backend("numba")
    monkeypatch.setattr(backend, "fuse_min", 64)
    rng = np.random.default_rng(3)
    a, w = rng.standard_normal((8, 16), np.float32), rng.standard_normal((16, 3), np.float32)
    pending = fusion.Tensor(a, backend="numba").relu() * 2  # 128 elements: lazy
    assert not pending.data.realized
    out = pending @ fusion.Tensor(w, backend="numba")
    assert out.data.realized and pending.data.realized
    np.testing.assert_allclose(out.numpy(), (np.maximum(a, 0) * 2) @ w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lazy_backend", LAZY_BACKENDS)
def test_eager_context_realises_at_once(lazy_backend):
    x = fusion.ones(3, backend=lazy_backend)
    assert not (x * 2).data.realized
    with fusion.eager():
        assert not fusion.lazy_enabled()
        assert (x * 2).data.realized
    assert fusion.lazy_enabled()


@pytest.mark.skipif("numba" not in LAZY_BACKENDS, reason="needs a lazy backend installed")
def test_fusion_lazy_0_in_the_environment():
    code = ("import fusion; x = fusion.ones(3, backend='numba') * 2; "
            "print(fusion.lazy_enabled(), x.data.realized)")
    env = {**os.environ, "FUSION_LAZY": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(fusion.__file__)))
    assert out.stdout.strip() == "False True"


def test_numpy_backend_runs_eagerly():
    x = fusion.ones(3, backend="numpy")
    assert (x * 2).exp().data.realized


def test_debug_prints_each_kernel(monkeypatch, capsys):
    x = fusion.Tensor(np.ones((4, 3), np.float32), backend="numpy_fused")
    monkeypatch.setenv("FUSION_DEBUG", "1")
    (x * 2).exp().sum(1).numpy()
    err = capsys.readouterr().err
    assert "fusion: r_mul_exp_sum" in err and "GB/s" in err and "t0 =" not in err
    monkeypatch.setenv("FUSION_DEBUG", "2")
    (x * 3).sin().numpy()
    err = capsys.readouterr().err
    assert "e_mul_sin" in err and "t0 = input0 float32" in err


# --- realisation points -------------------------------------------------------------------------
@pytest.mark.parametrize("lazy_backend", LAZY_BACKENDS)
def test_backward_and_step_leave_nothing_lazy(lazy_backend):
    fusion.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(lazy_backend)
    opt = optim.Adam(model.parameters(), lr=0.01)
    x = fusion.randn(16, 4, backend=lazy_backend)
    y = fusion.randint(0, 2, (16,), backend=lazy_backend)
    loss = model(x).cross_entropy(y)
    assert not loss.data.realized
    loss.backward()
    assert all(p.grad.data.realized for p in model.parameters())
    opt.step()
    assert all(p.data.realized and not p.data.srcs for p in model.parameters())
    for state in opt.state.values():
        assert all(v.data.realized for v in state.values() if isinstance(v, fusion.Tensor))


@pytest.mark.parametrize("lazy_backend", LAZY_BACKENDS)
def test_realisation_points_give_values(lazy_backend):
    x = fusion.Tensor([[1.0, -2.0], [3.0, 4.0]], backend=lazy_backend)
    y = (x * 2).relu()
    assert y.tolist() == [[2.0, 0.0], [6.0, 8.0]]
    z = y.sum()
    assert z.item() == 16.0 and bool(z > 1) and float(z) == 16.0
    assert "24." in repr((x * 4).sum())
    np.testing.assert_array_equal(np.asarray(x + 1), [[2.0, -1.0], [4.0, 5.0]])
    moved = (x - 1).to("numpy")
    assert moved.backend == "numpy" and moved.tolist() == [[0.0, -3.0], [2.0, 3.0]]
    w = (x * 3).realize()
    assert w.data.realized and not w.data.srcs


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
@pytest.mark.parametrize("lazy_backend", LAZY_BACKENDS)
def test_memory_is_flat_over_2000_training_steps(lazy_backend):
    fusion.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).to(lazy_backend)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = fusion.randn(32, 8, backend=lazy_backend)
    y = fusion.randint(0, 3, (32,), backend=lazy_backend)

    def step():
        opt.zero_grad()
        loss = model(x).cross_entropy(y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(200):
        step()
    before = _rss_mb()
    for _ in range(2000):
        loss = step()
    growth = _rss_mb() - before
    assert growth < 4.0, f"RSS grew by {growth:.1f} MB over 2000 steps"
    assert loss.item() < 1.2  # it trained


def test_stats_count_kernels_of_a_lazy_backend():
    x = fusion.Tensor(np.ones((4, 3), np.float32), backend="numpy_fused")
    lazy_mode.stats.reset()
    ((x * 2 + 1).exp() * x).sum(1).numpy()
    assert lazy_mode.stats.kernels == 1
    assert lazy_mode.stats.bytes == 4 * 3 * 4 + 4 * 4


def test_draw_schedule_lists_kernels_and_computes_nothing():
    pytest.importorskip("graphviz")
    from fusion.viz import draw_schedule

    x = fusion.Tensor(np.ones((4, 3), np.float32), backend="numpy_fused")
    s = x.softmax(-1)
    source = draw_schedule(s).source
    assert source.count("r_max") == 1 and "exp" in source and "div" in source
    assert not s.data.realized
