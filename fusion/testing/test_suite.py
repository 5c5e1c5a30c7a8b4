"""The whole conformance suite as one test module, so that the installed package runs it::

    pytest --fusion-backend NAME --pyargs fusion.testing
    python -m fusion.testing NAME

The fixtures plugin is required here, not in a conftest, so that the run needs no file
outside the package; a project whose conftest already requires it loads it only once.
"""

from fusion.testing.suite import *  # noqa: F403

pytest_plugins = ["fusion.testing.fixtures"]
