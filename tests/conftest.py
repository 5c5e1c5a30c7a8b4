"""Fusion's own tests use the conformance suite's fixtures (the ``backend`` fixture runs a test
once per installed backend, or per name in FUSION_TEST_BACKENDS)."""

pytest_plugins = ["fusion.testing.fixtures", "pytester"]
