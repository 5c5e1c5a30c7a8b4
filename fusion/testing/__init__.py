"""Fusion's conformance suite, shipped inside the package so that any backend can be checked.

The suite is a set of pytest test classes (:mod:`fusion.testing.suite`) whose tests take a
``backend`` fixture: the *name* of the backend under test. The fixtures live in the pytest
plugin :mod:`fusion.testing.fixtures`; a project's ``conftest.py`` enables them with::

    pytest_plugins = ["fusion.testing.fixtures"]

and a test module collects the whole suite with ``from fusion.testing.suite import *``.
The backends tested are every installed one, or those named in the environment variable
``FUSION_TEST_BACKENDS`` (``FUSION_TEST_BACKENDS=numpy,numba pytest``). A backend that lacks a
capability (its class attribute ``capabilities``) has the tests needing it skipped, with the
capability named in the reason.

:func:`check_op` is the oracle behind most tests: it runs one expression through numpy and
through Fusion, compares values and dtype, and compares Fusion's gradients with central finite
differences of the numpy expression in float64.
"""

import pytest

# Assertions inside the suite's modules get pytest's detailed failure messages. The modules
# are named one by one: this package itself is being imported as this line runs, and pytest
# warns about a name it can no longer rewrite.
pytest.register_assert_rewrite("fusion.testing.fixtures", "fusion.testing.oracle",
                               "fusion.testing.suite")

from .fixtures import BACKENDS_ENV, backend_names, requires, skip_unless_supported  # noqa: E402
from .oracle import check_op, make_inputs, numeric_gradient  # noqa: E402

__all__ = [
    "BACKENDS_ENV",
    "backend_names",
    "check_op",
    "make_inputs",
    "numeric_gradient",
    "requires",
    "skip_unless_supported",
]
