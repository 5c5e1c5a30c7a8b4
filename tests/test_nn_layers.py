"""The convolution, pooling, normalisation, embedding and attention layers: PyTorch's parameter
shapes, names and initialisation, forward passes against numpy, and save/load round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fusion
from fusion import nn
from fusion.testing.suite.conv import conv_reference, conv_transpose_reference, pool_reference


def _uniform_within(values: np.ndarray, bound: float) -> None:
    """Values drawn uniformly on +-bound: none outside, and a spread near bound / sqrt(3)."""
    assert np.abs(values).max() <= bound * (1 + 1e-6)
    assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_conv_layers_have_torch_shapes_and_initialisation(backend):
    with fusion.use_backend(backend):
        fusion.manual_seed(0)
        conv = nn.Conv2d(6, 40, (3, 5), groups=2)
        assert conv.weight.shape == (40, 3, 3, 5) and conv.bias.shape == (40,)
        _uniform_within(conv.weight.numpy(), 1 / math.sqrt(3 * 15))  # fan_in = 3 * 3 * 5
        assert np.abs(conv.bias.numpy()).max() <= 1 / math.sqrt(45)
        transposed = nn.ConvTranspose2d(40, 6, 4, groups=2)
        assert transposed.weight.shape == (40, 3, 4, 4)
        _uniform_within(transposed.weight.numpy(), 1 / math.sqrt(3 * 16))  # from weight.shape[1]
        one_d = nn.Conv1d(3, 5, 2, bias=False)
        assert one_d.weight.shape == (5, 3, 2) and one_d.bias is None
        assert sorted(conv.state_dict()) == ["bias", "weight"]


def test_conv_layers_compute_the_reference(backend):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 7, 6)).astype(np.float32)
    with fusion.use_backend(backend):
        conv = nn.Conv2d(4, 6, 3, stride=2, padding=(1, 2), dilation=(1, 2), groups=2)
        got = conv(fusion.Tensor(x)).numpy()
        ref = conv_reference(x, conv.weight.numpy(), conv.bias.numpy(), stride=2, padding=(1, 2),
                             dilation=(1, 2), groups=2)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
        transposed = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        got = transposed(fusion.Tensor(x)).numpy()
        ref = conv_transpose_reference(x, transposed.weight.numpy(), transposed.bias.numpy(),
                                       stride=2, padding=1, output_padding=1)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
        assert got.shape == (2, 2, 14, 12)
        np.testing.assert_allclose(nn.MaxPool2d(3, 2, 1)(fusion.Tensor(x)).numpy(),
                                   pool_reference(x, "max", 3, 2, 1))
        np.testing.assert_allclose(
            nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)(fusion.Tensor(x)).numpy(),
            pool_reference(x, "avg", 2, ceil_mode=True, count_include_pad=False), rtol=1e-5,
            atol=1e-6)
        with pytest.raises(ValueError, match=r"Conv2d\(4, 6\) expects input of shape \(N, 4"):
            conv(fusion.zeros(2, 3, 7, 6))


def test_batch_norm_2d_normalises_each_channel_and_tracks_statistics(backend):
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(4, 3, 5, 6)).astype(np.float32)
    with fusion.use_backend(backend):
        norm = nn.BatchNorm2d(3, momentum=0.5)
        out = norm(fusion.Tensor(x)).numpy()
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        var = x.var(axis=(0, 2, 3), keepdims=True)
        np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
        count = 4 * 5 * 6
        np.testing.assert_allclose(norm.running_mean.numpy(), 0.5 * mean.ravel(), rtol=1e-5)
        np.testing.assert_allclose(norm.running_var.numpy(),
                                   0.5 + 0.5 * var.ravel() * count / (count - 1), rtol=1e-5)
        norm.eval()
        expected = ((x - norm.running_mean.numpy().reshape(1, 3, 1, 1))
                    / np.sqrt(norm.running_var.numpy().reshape(1, 3, 1, 1) + 1e-5))
        np.testing.assert_allclose(norm(fusion.Tensor(x)).numpy(), expected, rtol=1e-4,
                                   atol=1e-5)
        with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) expects inputs of shape"):
            norm(fusion.zeros(4, 3))


def test_layer_norm_and_embedding_layers(backend):
    with fusion.use_backend(backend):
        norm = nn.LayerNorm((2, 3), elementwise_affine=True, bias=False)
        assert sorted(norm.state_dict()) == ["weight"]
        x = np.arange(12, dtype=np.float32).reshape(2, 2, 3) ** 2
        out = norm(fusion.Tensor(x)).numpy()
        mean = x.mean(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(out, (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True)
                                                               + 1e-5), rtol=1e-4, atol=1e-5)
        fusion.manual_seed(0)
        table = nn.Embedding(1000, 8, padding_idx=-1)
        weights = table.weight.numpy()
        assert table.padding_idx == 999 and not weights[999].any()
        assert weights[:999].std() == pytest.approx(1.0, rel=0.05)  # N(0, 1)
        index = fusion.Tensor([[3, 999], [7, 3]])
        np.testing.assert_array_equal(table(index).numpy(), weights[[[3, 999], [7, 3]]])
        table(index).sum().backward()
        grad = table.weight.grad.numpy()
        assert grad[3].tolist() == [2.0] * 8 and not grad[999].any()


def _mha_reference(mha: nn.MultiheadAttention, q, k, v, masked=None):
    """The attention PyTorch documents, written out with the layer's own weights."""
    e, h = mha.embed_dim, mha.num_heads
    w, b = mha.in_proj_weight.numpy(), mha.in_proj_bias.numpy()
    proj = [x @ w[i * e:(i + 1) * e].T + b[i * e:(i + 1) * e] for i, x in enumerate((q, k, v))]
    batch, length, source = q.shape[0], q.shape[1], k.shape[1]
    split = [p.reshape(batch, -1, h, e // h).transpose(0, 2, 1, 3) for p in proj]
    scores = split[0] @ split[1].transpose(0, 1, 3, 2) / math.sqrt(e // h)
    if masked is not None:
        scores = np.where(masked, -np.inf, scores)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    weights = scores / scores.sum(-1, keepdims=True)
    out = (weights @ split[2]).transpose(0, 2, 1, 3).reshape(batch, length, e)
    out = out @ mha.out_proj.weight.numpy().T + mha.out_proj.bias.numpy()
    assert weights.shape == (batch, h, length, source)
    return out, weights.mean(1)


def test_multihead_attention_against_the_reference(backend):
    rng = np.random.default_rng(2)
    q = rng.normal(size=(2, 4, 6)).astype(np.float32)
    kv = rng.normal(size=(2, 5, 6)).astype(np.float32)
    with fusion.use_backend(backend):
        fusion.manual_seed(0)
        mha = nn.MultiheadAttention(6, 3, batch_first=True)
        assert sorted(mha.state_dict()) == ["in_proj_bias", "in_proj_weight", "out_proj.bias",
                                            "out_proj.weight"]
        assert mha.in_proj_weight.shape == (18, 6) and not mha.in_proj_bias.numpy().any()
        _uniform_within(mha.in_proj_weight.numpy(), math.sqrt(6 / (18 + 6)))  # xavier
        out, weights = mha(fusion.Tensor(q), fusion.Tensor(kv), fusion.Tensor(kv))
        ref_out, ref_weights = _mha_reference(mha, q, kv, kv)
        np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(weights.numpy(), ref_weights, rtol=1e-4, atol=1e-6)
        padding = np.array([[False] * 4 + [True], [False, True, False, False, False]])
        out, _ = mha(fusion.Tensor(q), fusion.Tensor(kv), fusion.Tensor(kv),
                     key_padding_mask=fusion.Tensor(padding), need_weights=False)
        ref_out, _ = _mha_reference(mha, q, kv, kv, masked=padding[:, None, None, :])
        np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-4, atol=1e-5)
        # sequence first, causal
        out, _ = nn.MultiheadAttention.forward(mha, fusion.Tensor(q), fusion.Tensor(q),
                                               fusion.Tensor(q), is_causal=True)
        future = np.triu(np.ones((4, 4), bool), 1)
        ref_out, _ = _mha_reference(mha, q, q, q, masked=future)
        np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-4, atol=1e-5)
        out.sum().backward()
        assert mha.in_proj_weight.grad.shape == (18, 6)


def test_new_layers_save_and_load(backend, tmp_path):
    with fusion.use_backend(backend):
        fusion.manual_seed(0)
        model = nn.Sequential(
            nn.Unflatten(1, (2, 6, 6)), nn.Conv2d(2, 4, 3, padding="same"), nn.BatchNorm2d(4),
            nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.ConvTranspose2d(4, 3, 2, stride=2),
            nn.AvgPool2d(3, 1, 1, count_include_pad=False), nn.Flatten(), nn.LayerNorm(108),
            nn.Linear(108, 5))
        x = fusion.randn(3, 72)
        model(x)  # a training step moves the running statistics
        fusion.save(model, tmp_path / "model.safetensors")
        loaded = fusion.load(tmp_path / "model.safetensors")
        model.eval()
        loaded.eval()
        np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
        assert repr(loaded) == repr(model)
        for layer in (nn.Embedding(7, 3, padding_idx=2), nn.MultiheadAttention(4, 2, kdim=3),
                      nn.Conv1d(2, 2, 3, dilation=2, bias=False)):
            fusion.save(layer, tmp_path / "layer.safetensors")
            again = fusion.load(tmp_path / "layer.safetensors")
            assert type(again) is type(layer) and again.get_config() == layer.get_config()
            for name, value in layer.state_dict().items():
                np.testing.assert_array_equal(again.state_dict()[name].numpy(), value.numpy())
