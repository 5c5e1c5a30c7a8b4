"""Dtype rules: promotion of every pair, weak Python scalars, inference, casts, result dtypes.

The expected dtypes are written out here from Fusion's documented promotion rules (the later
of ``bool < int32 < int64 < float32 < float64`` wins; a Python scalar takes the tensor's dtype
unless it is a float meeting an integer tensor, which gives float32), not computed by Fusion.
"""

from __future__ import annotations

import numpy as np
import pytest

import fusion

from ..fixtures import skip_unless_supported

ALL = ["bool", "int32", "int64", "float32", "float64"]

#: The dtype of a binary operation between tensors of two dtypes (either order).
PROMOTION = {
    ("bool", "bool"): "bool", ("bool", "int32"): "int32", ("bool", "int64"): "int64",
    ("bool", "float32"): "float32", ("bool", "float64"): "float64",
    ("int32", "int32"): "int32", ("int32", "int64"): "int64", ("int32", "float32"): "float32",
    ("int32", "float64"): "float64", ("int64", "int64"): "int64",
    ("int64", "float32"): "float32", ("int64", "float64"): "float64",
    ("float32", "float32"): "float32", ("float32", "float64"): "float64",
    ("float64", "float64"): "float64",
}


def promoted(a: str, b: str) -> str:
    return PROMOTION.get((a, b)) or PROMOTION[(b, a)]


def arithmetic(a: str, b: str) -> str:
    """Arithmetic (+ - *) on two bools counts: int64, as a sum of bools does."""
    dtype = promoted(a, b)
    return "int64" if dtype == "bool" else dtype


#: tensor dtype -> dtype of ``t + 1``, ``t + 1.5``, ``t + True``
WEAK_SCALARS = {
    "bool": ("int64", "float32", "int64"),
    "int32": ("int32", "float32", "int32"),
    "int64": ("int64", "float32", "int64"),
    "float32": ("float32", "float32", "float32"),
    "float64": ("float64", "float64", "float64"),
}


def tensor(values, dtype: str, backend: str) -> fusion.Tensor:
    return fusion.Tensor(np.array(values).astype(dtype), backend=backend)


class TestDtypes:
    """What dtype each result has, on every backend alike."""

    @pytest.mark.parametrize("a", ALL)
    @pytest.mark.parametrize("b", ALL)
    def test_promotion(self, backend, a, b):
        skip_unless_supported(backend, a, b)
        x = tensor([[0, 1, 1]], a, backend)
        y = tensor([[1], [0]], b, backend)  # broadcast, too
        want = arithmetic(a, b)
        for name, out, ref in [
            ("+", x + y, x.numpy().astype(want) + y.numpy().astype(want)),
            ("*", x * y, x.numpy().astype(want) * y.numpy().astype(want)),
            ("-", x - y if want != "bool" else None, None),
        ]:
            if out is None:
                continue
            assert out.dtype.name == want, f"{a} {name} {b} gave {out.dtype.name}, not {want}"
            if ref is not None:
                np.testing.assert_array_equal(out.numpy(), ref)
        want = promoted(a, b)
        assert x.maximum(y).dtype.name == want
        assert fusion.where(x > 0, x, y).dtype.name == want
        assert fusion.cat([x.reshape(-1), y.reshape(-1)]).dtype.name == want
        assert (x == y).dtype.name == "bool" and (x < y).dtype.name == "bool"
        division = want if want.startswith("float") else "float32"
        assert (x / y).dtype.name == division

    @pytest.mark.parametrize("dtype", ALL)
    def test_python_scalars_are_weak(self, backend, dtype):
        skip_unless_supported(backend, dtype)
        x = tensor([0, 1, 2], dtype, backend) if dtype != "bool" else tensor(
            [True, False, True], dtype, backend)
        with_int, with_float, with_bool = WEAK_SCALARS[dtype]
        for out, want, ref in [
            (x + 1, with_int, x.numpy().astype(with_int) + 1),
            (1 + x, with_int, 1 + x.numpy().astype(with_int)),
            (x * 2, with_int, x.numpy().astype(with_int) * 2),
            (x + 1.5, with_float, x.numpy().astype(with_float) + 1.5),
            (2.5 * x, with_float, 2.5 * x.numpy().astype(with_float)),
            (x + True, with_bool, x.numpy().astype(with_bool) + 1),
        ]:
            assert out.dtype.name == want, f"{dtype} with a scalar gave {out.dtype.name}"
            np.testing.assert_allclose(out.numpy(), ref)
        assert (x / 2).dtype.name == (dtype if dtype.startswith("float") else "float32")
        assert (x == 1).dtype.name == "bool" and (x > 0.5).dtype.name == "bool"

    def test_numpy_scalars_are_weak_too(self, backend):
        x = fusion.ones(3, backend=backend)
        assert (x * np.float64(2.0)).dtype is fusion.float32
        assert (x + np.int64(2)).dtype is fusion.float32

    @pytest.mark.parametrize("data, dtype", [
        (1, "int64"), (1.0, "float32"), (True, "bool"), ([1, 2], "int64"),
        ([1, 2.0], "float32"), ([[True, False]], "bool"), ([[1], [2.5]], "float32"),
        (np.array([1], np.int32), "int32"), (np.array([1], np.int64), "int64"),
        (np.array([1], np.int8), "int32"), (np.array([1], np.int16), "int32"),
        (np.array([1], np.uint8), "int32"), (np.array([1], np.uint32), "int64"),
        (np.array([1.0], np.float16), "float32"), (np.array([1.0], np.float64), "float64"),
        (np.array([True]), "bool"), (np.float64(1.5), "float64"), (np.int32(3), "int32"),
    ], ids=repr)
    def test_inferred_dtype(self, backend, data, dtype):
        skip_unless_supported(backend, dtype)
        t = fusion.Tensor(data, backend=backend)
        assert t.dtype.name == dtype
        np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))

    @pytest.mark.parametrize("spec, name", [
        ("float32", "float32"), ("float64", "float64"), ("int32", "int32"), ("int64", "int64"),
        ("bool", "bool"), (fusion.float64, "float64"), (np.float64, "float64"),
        (np.dtype("int32"), "int32"), (float, "float32"), (int, "int64"), (bool, "bool"),
        (fusion.bool, "bool"),
    ], ids=repr)
    def test_explicit_dtype(self, backend, spec, name):
        skip_unless_supported(backend, name)
        t = fusion.Tensor([0.0, 1.0, 2.0], dtype=spec, backend=backend)
        assert t.dtype.name == name and t.numpy().dtype == np.dtype(name)
        assert t.dtype is getattr(fusion, name)

    @pytest.mark.parametrize("spec", ["float16", "complex64", np.complex128, "int8", str, "f4x"])
    def test_unknown_dtype(self, backend, spec):
        with pytest.raises(TypeError, match="float32") as info:
            fusion.Tensor([1.0], dtype=spec, backend=backend)
        assert "unknown dtype" in str(info.value) or "dtype" in str(info.value)

    @pytest.mark.parametrize("data", [np.array([1 + 2j]), "text", [None, 1], {"a": 1}],
                             ids=repr)
    def test_data_that_is_not_numbers(self, backend, data):
        with pytest.raises(TypeError):
            fusion.Tensor(data, backend=backend)

    @pytest.mark.parametrize("source", ALL)
    @pytest.mark.parametrize("target", ALL)
    def test_cast(self, backend, source, target):
        skip_unless_supported(backend, source, target)
        values = {"bool": [True, False], "int32": [-3, 0, 1, 100], "int64": [-3, 0, 2, 7],
                  "float32": [-2.75, -0.0, 0.5, 3.9], "float64": [-2.75, 0.0, 1e-30, 100.5]}
        x = np.array(values[source], dtype=source)
        t = fusion.Tensor(x, backend=backend)
        for out in (t.cast(target), t.astype(getattr(fusion, target)), t.cast(np.dtype(target))):
            assert out.dtype.name == target
            np.testing.assert_array_equal(out.numpy(), x.astype(target))
        assert t.float().dtype is fusion.float32

    def test_result_dtypes(self, backend):
        i32 = fusion.Tensor(np.array([[1, 2], [3, 4]], np.int32), backend=backend)
        b = i32 > 2
        f = fusion.ones(2, 2, backend=backend)
        expected = [
            (i32.sum(), "int64"), (b.sum(), "int64"), (i32.sum(0), "int64"),
            (i32.max(), "int32"), (b.max(), "bool"), (b.any(), "bool"), (b.all(), "bool"),
            (i32.mean(), "float32"), (i32.var(), "float32"), (i32.prod(), "int64"),
            (i32.argmax(), "int64"), (f.argmin(0), "int64"), (i32 / i32, "float32"),
            (i32 // i32, "int32"), (i32.exp(), "float32"), (i32.sqrt(), "float32"),
            (i32.softmax(), "float32"), (i32.logsumexp(), "float32"), (b @ b, "int64"),
            (i32 @ i32, "int32"), (i32 @ f, "float32"), (fusion.where(b, i32, f), "float32"),
            (fusion.where(b, i32, 0), "int32"), (abs(i32), "int32"), (-i32, "int32"),
            (i32.relu(), "int32"), (i32.clip(0, 2), "int32"), (i32.sign(), "int32"),
            (~b, "bool"), (b & b, "bool"), (b | b, "bool"), (i32[0], "int32"),
            (fusion.stack([i32, i32]), "int32"), (f.softmax(), "float32"),
        ]
        for k, (out, name) in enumerate(expected):
            assert out.dtype.name == name, f"case {k}: {out.dtype.name}, expected {name}"
            assert out.numpy().dtype == np.dtype(name), f"case {k}: numpy() dtype differs"

    def test_creation_dtypes(self, backend):
        expected = [
            (fusion.zeros(2, backend=backend), "float32"),
            (fusion.ones(2, dtype="int32", backend=backend), "int32"),
            (fusion.full((2,), 3, backend=backend), "int64"),
            (fusion.full((2,), 3.0, backend=backend), "float32"),
            (fusion.full((2,), True, backend=backend), "bool"),
            (fusion.arange(3, backend=backend), "int64"),
            (fusion.arange(0.5, 3, backend=backend), "float32"),
            (fusion.eye(2, backend=backend), "float32"),
            (fusion.rand(2, backend=backend), "float32"),
            (fusion.randn(2, backend=backend), "float32"),
            (fusion.linspace(0, 1, 3, backend=backend), "float32"),
            (fusion.randint(0, 5, (3,), backend=backend), "int64"),
        ]
        for k, (out, name) in enumerate(expected):
            assert out.dtype.name == name, f"case {k}: {out.dtype.name}, expected {name}"

    @pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
    def test_no_gradient_through_integers(self, backend, dtype):
        with pytest.raises(TypeError, match=dtype):
            fusion.Tensor([1, 0], dtype=dtype, requires_grad=True, backend=backend)
        with pytest.raises(TypeError, match=dtype):
            fusion.zeros(2, dtype=dtype, backend=backend).requires_grad_()
        x = fusion.Tensor([1.5, 2.5], requires_grad=True, backend=backend)
        rounded = x.cast(dtype)
        assert not rounded.requires_grad  # integers carry no gradient...
        with pytest.raises(RuntimeError, match="does not require grad"):
            rounded.sum().backward()  # ...so a loss made of them has none to give
