"""Creation functions, properties and conversions of Tensor."""

from __future__ import annotations

import numpy as np
import pytest

import fusion

from ..fixtures import skip_unless_supported


class TestCreation:
    """Tensor(...), zeros, ones, full, *_like, arange, eye, linspace and the seeded random
    functions."""

    @pytest.mark.parametrize("data", [3, 2.5, True, [1, 2, 3], [[1.0, 2.0], [3.0, 4.0]], [],
                                      np.arange(6).reshape(2, 3), np.ones((2, 0, 3))], ids=repr)
    def test_from_data(self, backend, data):
        t = fusion.Tensor(data, backend=backend)
        expected = np.asarray(data)
        assert t.shape == expected.shape and t.ndim == expected.ndim
        assert t.numel() == expected.size and t.backend == backend
        np.testing.assert_array_equal(t.numpy(), expected)

    def test_from_tensor_and_non_contiguous_array(self, backend):
        base = np.arange(12.0).reshape(3, 4)
        for array in (base.T, base[::-1, ::2], base[:, 1]):
            np.testing.assert_array_equal(fusion.Tensor(array, backend=backend).numpy(), array)
        t = fusion.Tensor(base, backend=backend)
        copy = fusion.tensor(t, dtype="float32", backend=backend)
        np.testing.assert_array_equal(copy.numpy(), base)

    def test_ragged_data(self, backend):
        with pytest.raises(ValueError, match="ragged"):
            fusion.Tensor([[1, 2], [3]], backend=backend)

    @pytest.mark.parametrize("fn, ref", [
        (lambda b: fusion.zeros(2, 3, backend=b), np.zeros((2, 3), np.float32)),
        (lambda b: fusion.zeros((2, 3), backend=b), np.zeros((2, 3), np.float32)),
        (lambda b: fusion.ones(4, dtype="int32", backend=b), np.ones(4, np.int32)),
        (lambda b: fusion.ones((), backend=b), np.ones((), np.float32)),
        (lambda b: fusion.zeros(0, 2, backend=b), np.zeros((0, 2), np.float32)),
        (lambda b: fusion.full((2, 2), 7, backend=b), np.full((2, 2), 7, np.int64)),
        (lambda b: fusion.full(3, -1.5, backend=b), np.full(3, -1.5, np.float32)),
        (lambda b: fusion.full((2,), False, backend=b), np.full(2, False)),
        (lambda b: fusion.full((200, 100), 0.5, backend=b), np.full((200, 100), 0.5, np.float32)),
        (lambda b: fusion.arange(5, backend=b), np.arange(5)),
        (lambda b: fusion.arange(2, 11, 3, backend=b), np.arange(2, 11, 3)),
        (lambda b: fusion.arange(5, 0, -2, backend=b), np.arange(5, 0, -2)),
        (lambda b: fusion.arange(0.0, 1.0, 0.25, backend=b), np.arange(0, 1, 0.25, np.float32)),
        (lambda b: fusion.arange(3, dtype="float32", backend=b), np.arange(3, dtype=np.float32)),
        (lambda b: fusion.eye(3, backend=b), np.eye(3, dtype=np.float32)),
        (lambda b: fusion.eye(2, 4, dtype="int64", backend=b), np.eye(2, 4, dtype=np.int64)),
        (lambda b: fusion.linspace(-1, 1, 5, backend=b), np.linspace(-1, 1, 5, dtype=np.float32)),
    ])
    def test_creation(self, backend, fn, ref):
        t = fn(backend)
        assert t.backend == backend and t.dtype.np == ref.dtype and t.shape == ref.shape
        np.testing.assert_array_equal(t.numpy(), ref)

    @pytest.mark.parametrize("like, ref", [
        ("zeros_like", lambda a: np.zeros_like(a)), ("ones_like", lambda a: np.ones_like(a)),
        ("full_like", lambda a: np.full_like(a, 3)),
    ])
    @pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
    def test_like(self, backend, like, ref, dtype):
        x = fusion.Tensor(np.arange(6).reshape(2, 3).astype(dtype), backend=backend)
        args = (3,) if like == "full_like" else ()
        out = getattr(fusion, like)(x, *args)
        assert out.backend == backend and out.dtype is x.dtype
        np.testing.assert_array_equal(out.numpy(), ref(x.numpy()))
        out = getattr(fusion, like)(x, *args, dtype="int64")
        assert out.dtype is fusion.int64

    def test_requires_grad_at_creation(self, backend):
        for t in (fusion.zeros(2, requires_grad=True, backend=backend),
                  fusion.randn(2, requires_grad=True, backend=backend),
                  fusion.Tensor([1.0], requires_grad=True, backend=backend)):
            assert t.requires_grad and t.grad is None

    @pytest.mark.parametrize("draw", [
        lambda b: fusion.rand(3, 4, backend=b), lambda b: fusion.randn((3, 4), backend=b),
        lambda b: fusion.uniform((3, 4), -2.0, 5.0, backend=b),
        lambda b: fusion.normal((3, 4), 1.0, 0.5, backend=b),
        lambda b: fusion.randn(5, dtype="float64", backend=b),
        lambda b: fusion.randint(0, 10, (6,), backend=b),
    ])
    def test_seeded_random_is_the_same_on_every_backend(self, backend, draw):
        fusion.manual_seed(1234)
        here = draw(backend)
        fusion.manual_seed(1234)
        reference = draw("numpy")
        assert here.backend == backend and here.dtype is reference.dtype
        np.testing.assert_array_equal(here.numpy(), reference.numpy())
        again = draw(backend)  # the generator moved on
        assert not np.array_equal(again.numpy(), here.numpy())

    def test_random_distributions(self, backend):
        fusion.manual_seed(0)
        u = fusion.rand(20000, backend=backend).numpy()
        assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
        n = fusion.randn(20000, backend=backend).numpy()
        assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03
        a = fusion.uniform(20000, -2.0, 6.0, backend=backend).numpy()
        assert a.min() >= -2 and a.max() < 6 and abs(a.mean() - 2) < 0.1
        g = fusion.normal(20000, 3.0, 0.5, backend=backend).numpy()
        assert abs(g.mean() - 3) < 0.02 and abs(g.std() - 0.5) < 0.02
        i = fusion.randint(-3, 4, 20000, backend=backend).numpy()
        assert set(np.unique(i)) == set(range(-3, 4))

    def test_random_needs_a_float_dtype(self, backend):
        with pytest.raises(TypeError, match="int32"):
            fusion.rand(3, dtype="int32", backend=backend)


class TestConversion:
    """shape, ndim, dtype, numel, backend, grad, T; numpy(), item(), tolist(), __array__,
    to(), cast(), detach()."""

    def test_properties(self, backend):
        array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        t = fusion.Tensor(array, backend=backend)
        assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
        assert t.ndim == 3 and t.numel() == 24 and len(t) == 2 and t.dtype is fusion.float32
        assert t.backend == backend and t.grad is None and not t.requires_grad
        assert t.T.shape == (4, 3, 2)
        np.testing.assert_array_equal(t.T.numpy(), array.T)

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float32", "float64"])
    def test_numpy_item_tolist(self, backend, dtype):
        skip_unless_supported(backend, dtype)
        array = (np.arange(6).reshape(2, 3) % 4).astype(dtype)
        t = fusion.Tensor(array, backend=backend)
        out = t.numpy()
        assert isinstance(out, np.ndarray) and out.dtype == array.dtype
        np.testing.assert_array_equal(out, array)
        assert t.tolist() == array.tolist()
        assert type(t.tolist()[0][0]) is type(array.tolist()[0][0])
        one = t[1, 2]
        assert one.item() == array[1, 2].item() and type(one.item()) is type(array[1, 2].item())
        assert fusion.Tensor(array[:1, :1], backend=backend).item() == array[0, 0].item()
        np.testing.assert_array_equal(np.asarray(t), array)
        np.testing.assert_array_equal(np.array(t, dtype=np.float64), array.astype(np.float64))

    def test_python_numbers(self, backend):
        t = fusion.Tensor([2.5], backend=backend)
        assert float(t) == 2.5 and int(t) == 2 and bool(t)
        with pytest.raises(ValueError, match="item"):
            fusion.ones(2, backend=backend).item()
        with pytest.raises(ValueError, match="ambiguous"):
            bool(fusion.ones(2, backend=backend))
        with pytest.raises(TypeError, match="0-d"):
            len(fusion.Tensor(1.0, backend=backend))

    def test_numpy_functions_accept_tensors(self, backend):
        t = fusion.Tensor([[1.0, 2.0], [3.0, 4.0]], backend=backend)
        np.testing.assert_allclose(np.exp(t), np.exp([[1, 2], [3, 4]]), rtol=1e-6)
        np.testing.assert_allclose(np.stack([t, t]).sum(), 20.0)

    def test_to(self, backend, other_backend):
        t = fusion.Tensor([[1.0, 2.0], [3.0, 4.0]], backend=backend).T
        moved = t.to(other_backend)
        assert moved.backend == other_backend and moved.dtype is t.dtype
        np.testing.assert_array_equal(moved.numpy(), t.numpy())
        back = moved.to(backend)
        assert back.backend == backend
        np.testing.assert_array_equal(back.numpy(), t.numpy())
        assert t.to(backend) is t or t.to(backend).backend == backend

    def test_to_keeps_requires_grad_and_cuts_the_graph(self, backend, other_backend):
        x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
        moved = (x * 2).to(other_backend)
        assert moved.requires_grad
        moved.sum().backward()
        assert x.grad is None  # a move is a new leaf
        np.testing.assert_array_equal(moved.grad.numpy(), [1.0, 1.0])

    def test_detach(self, backend):
        x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
        y = (x * 3).detach()
        assert not y.requires_grad and y.grad is None
        np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])
        (x * y).sum().backward()  # y is a constant here
        np.testing.assert_array_equal(x.grad.numpy(), [3.0, 6.0])

    def test_repr(self, backend):
        x = fusion.Tensor([1.5, -2.0], requires_grad=True, backend=backend)
        text = repr(x * 2)
        for part in ("3.", "-4.", "shape=(2,)", "dtype=float32", f"backend={backend}",
                     "op=Mul", "requires_grad=True"):
            assert part in text, f"{part!r} missing from {text!r}"
        text = repr(fusion.Tensor([[1, 2], [3, 4]], backend=backend))
        for part in ("[[1, 2],", "[3, 4]]", "shape=(2, 2)", "dtype=int64"):
            assert part in text, f"{part!r} missing from {text!r}"
        assert "op=" not in text and "requires_grad" not in text
        assert "shape=()" in repr(fusion.Tensor(1.0, backend=backend))
        assert "op=Exp" in repr(x.exp())
