"""Tensor.multinomial: frequencies, distinct draws without replacement, seeding, errors."""

from __future__ import annotations

import numpy as np
import pytest

import fusion


class TestSampling:
    def test_frequencies_follow_the_weights(self, backend):
        fusion.manual_seed(0)
        weights = np.array([[1.0, 2.0, 7.0, 0.0], [0.0, 0.0, 1.0, 3.0]], np.float32)
        draws = fusion.Tensor(weights, backend=backend).multinomial(20000, replacement=True)
        assert draws.shape == (2, 20000) and draws.dtype is fusion.int64
        for row, w in zip(draws.numpy(), weights, strict=True):
            frequencies = np.bincount(row, minlength=4) / row.size
            np.testing.assert_allclose(frequencies, w / w.sum(), atol=0.015)

    def test_without_replacement_draws_distinct_categories(self, backend):
        fusion.manual_seed(1)
        weights = fusion.Tensor([[5.0, 1.0, 0.0, 2.0, 1.0]] * 50, backend=backend)
        draws = weights.multinomial(4).numpy()
        assert all(len(set(row)) == 4 and 2 not in row for row in draws)
        firsts = np.bincount(draws[:, 0], minlength=5) / 50
        assert firsts[0] > firsts[1]  # the heaviest category comes first most often

    def test_one_seed_one_draw(self, backend):
        weights = fusion.Tensor([0.2, 0.3, 0.5], backend=backend)
        fusion.manual_seed(7)
        first = weights.multinomial(10, replacement=True).numpy()
        fusion.manual_seed(7)
        np.testing.assert_array_equal(weights.multinomial(10, replacement=True).numpy(), first)
        assert first.shape == (10,)

    def test_bad_weights(self, backend):
        with pytest.raises(ValueError, match="non-negative"):
            fusion.Tensor([1.0, -1.0], backend=backend).multinomial(1)
        with pytest.raises(ValueError, match="sums to 0"):
            fusion.Tensor([0.0, 0.0], backend=backend).multinomial(1)
        with pytest.raises(ValueError, match="only 1 categories"):
            fusion.Tensor([0.0, 3.0], backend=backend).multinomial(2)
