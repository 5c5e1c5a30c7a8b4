"""The dask backend: chunked primitives against numpy, settings, persisted state, and a real
``distributed.LocalCluster`` (2 worker processes on 127.0.0.1): part of the conformance suite,
data-parallel training against the numpy backend, an out-of-core reduction, a killed worker.

Why only part of the conformance suite runs on the cluster: the whole suite runs on the dask
backend with every other backend (tests/test_conformance.py), under the local synchronous
scheduler that tests/conftest.py makes the default, and takes minutes there already; on the
cluster every result is a round trip to the scheduler and two worker processes, several times
slower per test. The primitives (every one, each dtype) and the linear algebra run on the
cluster here: they are where a scheduler could change a result (chunks cut across workers,
blocks serialised between processes); the composite ops above them only call the primitives.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

import fusion
from fusion.testing.suite.linalg import TestLinalg as _TestLinalg
from fusion.testing.suite.primitives import TestPrimitives as _TestPrimitives

distributed = pytest.importorskip("distributed")
from fusion.backends import dask as fusion_dask  # noqa: E402
from fusion.backends.dask import config  # noqa: E402


@pytest.fixture
def settings():
    """Restores the backend's settings after the test."""
    backend = fusion.get_backend("dask")
    previous = backend.settings
    yield backend
    backend.configure(**vars(previous))


# --- primitives across several chunks ----------------------------------------------------
def test_primitives_agree_with_numpy_across_chunks(settings):
    settings.configure(chunks=2)  # rows per chunk: every array below has several
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5)).astype(np.float32)
    b = rng.normal(size=(5, 3)).astype(np.float32)
    with fusion.use_backend("dask"):
        x, w = fusion.Tensor(a), fusion.Tensor(b)
        assert len(x.data.data.chunks[0]) == 4 and x.data.data.chunks[1] == (5,)
        np.testing.assert_allclose((x @ w).numpy(), a @ b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(x.sum(0).numpy(), a.sum(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(x.max(0).numpy(), a.max(0))
        np.testing.assert_allclose((x.exp() * x).mean().item(), (np.exp(a) * a).mean(),
                                   rtol=1e-5)
        np.testing.assert_array_equal(x[1:6:2, ::-1].numpy(), a[1:6:2, ::-1])
        big = fusion.full((9, 4), 2.5)  # a broadcast constant is cut along the batch too
        assert len(big.data.data.chunks[0]) == 5
        np.testing.assert_array_equal(big.numpy(), np.full((9, 4), 2.5, np.float32))


def test_integer_contraction_wraps_as_numpy_does(settings):
    settings.configure(chunks=1)
    a = np.full((2, 3), 2**20, np.int32)
    with fusion.use_backend("dask"):
        got = (fusion.Tensor(a) @ fusion.Tensor(a.T)).numpy()
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, a @ a.T)  # 3 * 2**40 wraps in int32


def test_floating_point_warnings_stay_quiet():
    with fusion.use_backend("dask"), np.errstate(all="raise"):
        x = fusion.Tensor([0.0, -1.0, 1000.0])
        out = (x.log(), x.sqrt(), x.exp(), 1 / x)
        values = [t.numpy() for t in out]
    assert values[0][0] == -np.inf and np.isnan(values[1][1]) and values[2][2] == np.inf


def test_describe_of_a_dask_tensor_equals_that_of_its_values(settings):
    from fusion.data import describe

    settings.configure(chunks=7)
    rng = np.random.default_rng(3)
    values = rng.normal(size=(50, 3))
    values[[4, 20], 1] = np.nan
    values[:, 2] = 1.5  # a constant column
    expected = describe(values, names=["a", "b", "c"])
    got = describe(fusion.Tensor(values, backend="dask"), names=["a", "b", "c"])
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-12, equal_nan=True)
    some = describe(fusion.Tensor(values, backend="dask"), statistics=["Max", "Count"])
    assert some.statistics == ["Max", "Count"] and some["1"]["Count"] == 48
    with pytest.raises(ValueError, match="describe needs statistics among"):
        describe(values, statistics=["Median"])


# --- settings -------------------------------------------------------------------------------
def test_settings_come_from_the_environment():
    s = config.from_environment({"FUSION_DASK_SCHEDULER": "synchronous",
                                 "FUSION_DASK_CHUNKS": "16MiB", "FUSION_DASK_TIMEOUT": "60",
                                 "FUSION_DASK_NO_WORKERS": "5"})
    assert (s.scheduler, s.chunks, s.timeout, s.no_workers) == ("synchronous", "16MiB", 60, 5)
    assert config.from_environment({"FUSION_DASK_CHUNKS": "64"}).chunks == 64
    assert config.from_environment({}) == config.Settings()


@pytest.mark.parametrize("changes, message", [
    ({"scheduler": "gpu"}, "scheduler must be"),
    ({"chunks": 0}, "positive number of rows"),
    ({"chunks": "lots"}, "positive number of rows"),
    ({"timeout": -1}, "timeout must be"),
    ({"chunk": 3}, "unknown dask backend setting"),
])
def test_bad_settings_are_refused(settings, changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        settings.configure(**changes)


def test_configure_returns_the_previous_settings(settings):
    before = settings.settings
    previous = fusion_dask.configure(chunks=3)
    assert previous == before and settings.settings.chunks == 3


# --- import and installation ----------------------------------------------------------------
def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=os.getcwd())


def test_importing_fusion_and_listing_backends_does_not_import_dask():
    result = run_python(
        "import sys, fusion\n"
        "assert 'dask' in fusion.available_backends()\n"
        "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_selecting_the_backend_without_dask_names_the_extra():
    result = run_python(
        "import sys\n"
        "sys.modules['dask'] = None  # as if dask were not installed\n"
        "import fusion\n"
        "try:\n"
        "    fusion.set_backend('dask')\n"
        "except fusion.BackendError as exc:\n"
        "    print(exc)\n"
        "print(fusion.ones(2).sum().item())\n")
    assert result.returncode == 0, result.stderr
    assert "pip install 'fusion[dask]'" in result.stdout
    assert "backend 'dask'" in result.stdout
    assert result.stdout.strip().endswith("2.0")  # the other backends still work


# --- persisted state ------------------------------------------------------------------------
def _steps(backend: str, count: int) -> tuple[list[float], fusion.Tensor]:
    with fusion.use_backend(backend):
        fusion.manual_seed(0)
        model = fusion.nn.Sequential(fusion.nn.Linear(4, 8), fusion.nn.ReLU(),
                                     fusion.nn.Linear(8, 3))
        opt = fusion.optim.Adam(model.parameters(), lr=0.01)
        rng = np.random.default_rng(0)
        x = fusion.Tensor(rng.normal(size=(16, 4)).astype(np.float32))
        y = fusion.Tensor(rng.integers(0, 3, 16))
        losses = []
        for _ in range(count):
            loss = fusion.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses, model[0].weight


def test_an_optimizer_step_persists_so_the_graph_does_not_grow():
    losses, weight = _steps("dask", 12)
    reference, _ = _steps("numpy", 12)
    np.testing.assert_allclose(losses, reference, rtol=1e-5)
    graph = weight.data.data.dask
    assert len(graph.layers) == 1  # the computed value itself: no history behind it


def test_persist_keeps_values_and_skips_eager_backends():
    with fusion.use_backend("dask"):
        x = fusion.Tensor([1.0, 2.0]) * 3
        fusion.persist(x, None)
        assert len(x.data.data.dask.layers) == 1
        np.testing.assert_array_equal(x.numpy(), [3.0, 6.0])
    y = fusion.Tensor([1.0]) + 1  # numpy: nothing to do, nothing changes
    data = y.data.data
    fusion.persist(y)
    assert y.data.data is data


def test_a_long_chain_without_a_computed_value_stays_fast_to_build():
    with fusion.use_backend("dask"):
        x = fusion.Tensor([1.5, -0.5], requires_grad=True)
        y = x
        for _ in range(400):  # 1200 primitives, 2400 with the backward pass
            y = y * 0.5 + y * 0.5
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
        assert len(y.data.data.dask.layers) < 200  # deep operands were persisted on the way


# --- a real cluster -------------------------------------------------------------------------
def _cluster(**kwargs):
    options = dict(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                   dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                   memory_limit="1GiB")
    options.update(kwargs)
    return distributed.LocalCluster(**options)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes, the default client while the module's cluster
    tests run (the backend's ``auto`` scheduler finds it)."""
    with _cluster() as local, distributed.Client(local) as client:
        yield client


@pytest.fixture
def on_cluster(cluster, settings):
    settings.configure(scheduler="auto", chunks=4)
    with cluster.as_current():
        yield cluster


class TestPrimitivesOnACluster(_TestPrimitives):
    fusion_backends = ["dask"]

    @pytest.fixture(autouse=True)
    def _on_cluster(self, on_cluster):
        yield


class TestLinalgOnACluster(_TestLinalg):
    fusion_backends = ["dask"]

    @pytest.fixture(autouse=True)
    def _on_cluster(self, on_cluster):
        yield


def test_results_are_computed_on_the_workers(on_cluster):
    x = fusion.Tensor(np.arange(16.0), backend="dask")  # 4 chunks of 4 rows
    with distributed.get_task_stream(on_cluster) as stream:
        assert (x * 2).sum().item() == 240.0
    assert {task["worker"] for task in stream.data} == set(on_cluster.nthreads())
    assert "cluster at tcp://127.0.0.1" in fusion.get_backend("dask").runner.where()


def test_data_parallel_training_matches_the_numpy_backend(on_cluster):
    pytest.importorskip("sklearn")
    from fusion.examples.dask_digits import data_parallel, train

    reference = train("numpy", epochs=1, batch_size=128)
    result = data_parallel(on_cluster, 128, epochs=1)
    assert result["steps"] == reference["steps"] > 5
    np.testing.assert_allclose(result["losses"], reference["losses"], rtol=1e-4, atol=1e-5)
    assert result["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-9)
    assert reference["accuracy"] > 0.5  # one epoch: well above chance (0.1)


def _pseudo_random(rows: int, cols: int, backend: str) -> fusion.Tensor:
    """A (rows * cols,) float32 tensor made on the workers from two small host vectors:
    frac(sin(12.9898 a + 78.233 b) * 43758.5453), the classic shader hash."""
    a = fusion.arange(rows, dtype="float32", backend=backend).reshape(rows, 1)
    b = fusion.arange(cols, dtype="float32", backend=backend).reshape(1, cols)
    h = (a * 12.9898 + b * 78.233).sin() * 43758.5453
    return (h - h.floor()).reshape(rows * cols)


def test_describe_of_a_tensor_larger_than_a_worker_out_of_core(settings):
    """2.4e7 float32 values (96 MB; 192 MB as the float64 describe computes in) on workers
    limited to 200 MB each, of which the process itself takes about half: the data never fits
    on a worker, nor comes back to the client whole."""
    from fusion.data import describe

    rows, cols = 6000, 4000
    wanted = ["Count", "Mean", "Std", "Min", "Max", "Missing", "Skewness", "Kurtosis"]
    with _cluster(memory_limit="200MB") as local, distributed.Client(local) as client:
        settings.configure(scheduler="auto", chunks="4MiB")
        with client.as_current():
            x = _pseudo_random(rows, cols, "dask")
            tracemalloc.start()
            result = describe(x, statistics=wanted)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    # graphs and messages take a few MB; the data (96 MB as float32) never comes back
    assert peak < rows * cols * 4 / 4, f"the client held {peak / 1e6:.0f} MB at its peak"
    # the reference: the same values on the numpy backend, in 10 slices of rows
    total, count, sq = 0.0, 0, 0.0
    lowest, highest = np.inf, -np.inf
    for i in range(10):
        a = np.arange(i * rows // 10, (i + 1) * rows // 10, dtype=np.float32)[:, None]
        b = np.arange(cols, dtype=np.float32)[None, :]
        h = np.sin(a * np.float32(12.9898) + b * np.float32(78.233)) * np.float32(43758.5453)
        v = (h - np.floor(h)).astype(np.float64)
        total, count, sq = total + v.sum(), count + v.size, sq + (v * v).sum()
        lowest, highest = min(lowest, v.min()), max(highest, v.max())
    mean = total / count
    column = result["0"]
    assert column["Count"] == count and column["Missing"] == 0
    assert column["Mean"] == pytest.approx(mean, rel=1e-9)
    assert column["Std"] == pytest.approx(np.sqrt((sq - count * mean**2) / (count - 1)),
                                          rel=1e-6)
    assert (column["Min"], column["Max"]) == (lowest, highest)
    assert 0.45 < mean < 0.55 and abs(column["Skewness"]) < 0.05  # about uniform on [0, 1)


# --- errors ---------------------------------------------------------------------------------
@pytest.fixture
def fragile_cluster(settings):
    """A cluster whose scheduler gives a task up at the first death of a worker running it."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with _cluster() as local, distributed.Client(local) as client:
            settings.configure(scheduler="auto", chunks="1MiB")
            with client.as_current():
                yield client


def test_a_killed_worker_is_a_clear_error_naming_the_backend_and_cluster(fragile_cluster):
    client = fragile_cluster
    pids = client.run(os.getpid)
    x = _pseudo_random(4000, 4000, "dask")
    slow = x
    for _ in range(30):
        slow = (slow * 1.0001 + 0.5).sin()
    outcome = {}

    def compute():
        try:
            outcome["value"] = slow.sum().item()
        except Exception as exc:  # the error the user would see
            outcome["error"] = exc

    thread = threading.Thread(target=compute)
    thread.start()
    deadline = time.monotonic() + 60
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = [w for w, tasks in client.processing().items() if tasks]
    assert busy, "the computation never started"
    os.kill(pids[busy[0]], signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive(), "the computation hung after a worker died"
    error = outcome.get("error")
    assert isinstance(error, fusion.BackendError), outcome
    assert "dask backend" in str(error) and "tcp://127.0.0.1" in str(error)
    assert "died" in str(error)


def test_a_cluster_without_workers_gives_up_instead_of_hanging(fragile_cluster, settings):
    client = fragile_cluster
    settings.configure(no_workers=1.0)
    client.cluster.scale(0)
    deadline = time.monotonic() + 30
    while client.nthreads() and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    with pytest.raises(fusion.BackendError, match="has had no worker for 1 s"):
        fusion.Tensor([1.0, 2.0], backend="dask").sum().item()
    assert time.monotonic() - started < 20
