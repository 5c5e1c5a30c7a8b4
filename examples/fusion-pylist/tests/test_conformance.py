"""The whole Fusion conformance suite against this backend: the one file a backend needs.

``pytest`` here runs it on ``pylist`` only (``addopts`` in pyproject.toml); every test class
comes from Fusion, and the tests this backend cannot support are skipped with the reason.
"""

from fusion.testing.suite import *  # noqa: F403  (pytest collects the imported Test classes)

pytest_plugins = ["fusion.testing.fixtures"]
