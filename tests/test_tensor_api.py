"""The Tensor API as a whole: every method and function the API offers exists, the examples in
docstrings run, and details outside the per-backend suite (identity, lists as operands)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

import fusion
from fusion.nn import functional as F

TENSOR_METHODS = """
    shape ndim dtype numel backend grad T numpy item tolist __array__ to cast detach
    __add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __pow__
    __rpow__ __matmul__ __rmatmul__ __neg__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__
    abs maximum minimum where clip
    relu leaky_relu exp log log2 sqrt rsqrt sin cos tanh sigmoid softplus gelu square
    reciprocal sign
    sum max min mean var std argmax argmin logsumexp softmax log_softmax prod
    reshape flatten squeeze unsqueeze permute transpose expand pad shrink flip repeat
    __getitem__ matmul dot cross_entropy binary_cross_entropy backward requires_grad
""".split()
FUNCTIONS = """
    Tensor zeros ones full zeros_like ones_like full_like arange eye rand randn uniform normal
    manual_seed cat stack where maximum minimum no_grad gradcheck available_backends
    set_backend use_backend get_backend hookimpl bool int32 int64 float32 float64
""".split()
LOSSES = "cross_entropy binary_cross_entropy binary_cross_entropy_with_logits mse_loss nll_loss"


def test_every_promised_name_exists():
    t = fusion.ones(2, 2)
    assert [m for m in TENSOR_METHODS if not hasattr(t, m)] == []
    assert [f for f in FUNCTIONS if not hasattr(fusion, f)] == []
    assert [f for f in LOSSES.split() if not callable(getattr(F, f, None))] == []


MODULES_WITH_EXAMPLES = [
    "fusion", "fusion.core.tensor", "fusion.core.gradcheck", "fusion.core.backend",
    "fusion.core.grad_mode", "fusion.nn.functional", "fusion.testing.oracle",
    "fusion.testing.fixtures", "fusion.core.indexing", "fusion.core.positional",
    "fusion.core.conv", "fusion.core.sampling", "fusion.nn.conv", "fusion.nn.layers",
    "fusion.nn.attention",
]


@pytest.mark.parametrize("name", MODULES_WITH_EXAMPLES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"fusion": fusion, "np": np},
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_tensors_hash_by_identity():
    a, b = fusion.ones(2), fusion.ones(2)
    seen = {a: "a", b: "b"}
    assert seen[a] == "a" and seen[b] == "b" and len({a, b, a}) == 2
    assert isinstance(a == b, fusion.Tensor)  # == compares elements


def test_a_tensor_from_a_tensor_copies_values_not_the_graph():
    x = fusion.Tensor([1.0, 2.0], requires_grad=True)
    y = fusion.Tensor(x * 2)
    assert not y.requires_grad and y._ctx is None
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    assert fusion.tensor([1, 2], dtype="float64").dtype is fusion.float64


def test_a_list_becomes_a_tensor_wherever_one_is_expected():
    x = fusion.Tensor([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal((x @ [1.0, 1.0]).numpy(), [3.0, 7.0])
    np.testing.assert_array_equal(fusion.where([True, False], x, 0.0).numpy(),
                                  [[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_array_equal(fusion.maximum([0.0, 5.0], x).numpy(), [[1.0, 5.0], [3.0, 5.0]])
    assert F.mse_loss(x, [[1.0, 2.0], [3.0, 5.0]]).item() == 0.25
