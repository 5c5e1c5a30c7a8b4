"""layer_norm, embedding and scaled_dot_product_attention against numpy, with gradients."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.nn import functional as F

from ..oracle import check_op


def _pair(fusion_fn, numpy_fn):
    return lambda *xs: fusion_fn(*xs) if isinstance(xs[0], fusion.Tensor) else numpy_fn(*xs)


def _layer_norm(x, w, b, axes):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * w + b


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _attention(q, k, v, allowed=None, added=None):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if added is not None:
        scores = scores + added
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    return (_softmax(scores) @ v).astype(q.dtype)


class TestNNOps:
    @pytest.mark.parametrize("shape, normalized", [((3, 5), (5,)), ((2, 3, 4), (3, 4))])
    def test_layer_norm(self, backend, shape, normalized):
        axes = tuple(range(len(shape) - len(normalized), len(shape)))
        check_op(backend, [shape, normalized, normalized], _pair(
            lambda x, w, b: F.layer_norm(x, normalized, w, b),
            lambda x, w, b: _layer_norm(x, w, b, axes).astype(x.dtype)), grad_rtol=1e-3)

    def test_embedding(self, backend):
        index = np.array([[1, 4, 1], [0, 3, 4]])
        check_op(backend, [(5, 3)], _pair(
            lambda w: F.embedding(fusion.Tensor(index, backend=backend), w),
            lambda w: w[index]))

    def test_embedding_padding_row_gets_no_gradient(self, backend):
        weight = fusion.randn(4, 2, backend=backend, requires_grad=True)
        F.embedding(fusion.Tensor([0, 2, 2, 3], backend=backend), weight,
                    padding_idx=2).sum().backward()
        np.testing.assert_array_equal(weight.grad.numpy(), [[1, 1], [0, 0], [0, 0], [1, 1]])

    @pytest.mark.parametrize("causal", [False, True])
    def test_attention(self, backend, causal):
        allowed = np.tril(np.ones((4, 6), bool)) if causal else None
        check_op(backend, [(2, 4, 3), (2, 6, 3), (2, 6, 5)], _pair(
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
            lambda q, k, v: _attention(q, k, v, allowed)))

    def test_attention_masks(self, backend):
        allowed = np.random.default_rng(4).random((3, 5)) < 0.6
        allowed[:, 0] = True  # every query sees something
        added = np.random.default_rng(5).normal(size=(3, 5)).astype(np.float32)
        check_op(backend, [(2, 3, 4), (2, 5, 4), (2, 5, 4)], _pair(
            lambda q, k, v: F.scaled_dot_product_attention(
                q, k, v, attn_mask=fusion.Tensor(allowed, backend=backend)),
            lambda q, k, v: _attention(q, k, v, allowed=allowed)))
        check_op(backend, [(3, 4), (5, 4), (5, 2)], _pair(
            lambda q, k, v: F.scaled_dot_product_attention(
                q, k, v, attn_mask=fusion.Tensor(added, backend=backend)),
            lambda q, k, v: _attention(q, k, v, added=added)))
