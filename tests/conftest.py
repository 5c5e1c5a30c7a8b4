"""Fusion's own tests use the conformance suite's fixtures (the ``backend`` fixture runs a test
once per installed backend, or per name in FUSION_TEST_BACKENDS).

The dask backend runs here on dask's synchronous scheduler unless FUSION_DASK_SCHEDULER says
otherwise: the tests' arrays are tiny, where threads only add overhead, and the tests that
need a cluster (tests/test_dask_backend.py) start a LocalCluster and select it themselves.
"""

import os

os.environ.setdefault("FUSION_DASK_SCHEDULER", "synchronous")

pytest_plugins = ["fusion.testing.fixtures", "pytester"]
