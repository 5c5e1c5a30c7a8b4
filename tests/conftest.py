"""Fusion's own tests use the conformance suite's fixtures (the ``backend`` fixture runs a test
once per installed backend, or per name in FUSION_TEST_BACKENDS).

The dask backend runs here on dask's synchronous scheduler unless FUSION_DASK_SCHEDULER says
otherwise: the tests' arrays are tiny, where threads only add overhead, and the tests that
need a cluster (tests/test_dask_backend.py) start a LocalCluster and select it themselves.

Every primitive call on dask builds a graph (about a quarter of a millisecond) and every result
is a scheduler run, so a test takes 10 to 100 times as long there. Unless FUSION_TEST_BACKENDS
names the backends, dask therefore runs the conformance suite (test_conformance.py) and its own
tests (test_dask_backend.py), which cover it, and not the rest of the per-backend tests: the
models, optimizers and tools above the primitives are backend-agnostic code that the numpy and
numba runs exercise. ``FUSION_TEST_BACKENDS=dask pytest`` runs everything on it.
"""

import os

os.environ.setdefault("FUSION_DASK_SCHEDULER", "synchronous")

pytest_plugins = ["fusion.testing.fixtures", "pytester"]

#: Test files that run on the dask backend when FUSION_TEST_BACKENDS is not set.
DASK_FILES = ("test_conformance.py", "test_dask_backend.py")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("FUSION_TEST_BACKENDS"):
        return
    kept, deselected = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_dask = callspec is not None and callspec.params.get("backend") == "dask"
        if on_dask and item.path.name not in DASK_FILES:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
