"""The conformance suite's test classes; ``from fusion.testing.suite import *`` collects them all.

Each test takes the ``backend`` fixture of :mod:`fusion.testing.fixtures` (enable that plugin
in ``conftest.py``), so the whole suite runs once per backend under test.
"""

from .activations import TestActivations
from .autograd import TestAutograd, TestEndToEnd
from .conv import TestConvolution
from .dtypes import TestDtypes
from .edge_cases import TestEdgeCases, TestErrors
from .elementwise import TestBroadcasting, TestElementwise
from .fused import TestFusedKernels
from .gathering import TestGathering, TestShapeEdgeCases
from .linalg import TestLinalg, TestLosses
from .movement import TestIndexing, TestMovement
from .nn_ops import TestNNOps
from .positional import TestPositional
from .primitives import TestPrimitives
from .reductions import TestReductions
from .sampling import TestSampling
from .special_values import TestSpecialValues
from .tensor import TestConversion, TestCreation

__all__ = [
    "TestActivations",
    "TestAutograd",
    "TestBroadcasting",
    "TestConversion",
    "TestConvolution",
    "TestCreation",
    "TestDtypes",
    "TestEdgeCases",
    "TestElementwise",
    "TestEndToEnd",
    "TestErrors",
    "TestGathering",
    "TestFusedKernels",
    "TestIndexing",
    "TestLinalg",
    "TestLosses",
    "TestMovement",
    "TestNNOps",
    "TestPositional",
    "TestPrimitives",
    "TestReductions",
    "TestSampling",
    "TestShapeEdgeCases",
    "TestSpecialValues",
]
