"""The numba backend, primitive by primitive, against the numpy backend as the reference.

Each primitive runs on every dtype it applies to, three ways: as the backend runs small arrays
(one numpy call each, below ``numpy_below``), through the serial kernels and through the
parallel kernels (backend instances whose thresholds are lowered, so that small arrays take
those paths), on contiguous and non-contiguous inputs, with NaN, inf, division by zero and
empty arrays.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

import fusion  # noqa: E402
from fusion.backends.numba import config  # noqa: E402
from fusion.backends.numba.backend import NumbaBackend  # noqa: E402

DTYPES = ["bool", "int32", "int64", "float32", "float64"]
INTS = ["int32", "int64"]
FLOATS = ["float32", "float64"]
NUMERIC = INTS + FLOATS
RTOL = {"float32": 1e-6, "float64": 1e-12}

# inf, nan and division by zero are documented results; the reference numpy calls warn.
pytestmark = pytest.mark.filterwarnings(
    "ignore:(divide by zero|overflow|invalid value) encountered:RuntimeWarning"
)


@pytest.fixture(scope="module")
def ref():
    return fusion.get_backend("numpy")


@pytest.fixture(scope="module")
def small():
    return fusion.get_backend("numba")  # as shipped: these small arrays take numpy's calls


@pytest.fixture(scope="module")
def serial():
    backend = NumbaBackend()
    backend.numpy_below = 0  # every primitive runs its numba kernel, even on tiny arrays
    return backend


@pytest.fixture(scope="module")
def parallel():
    backend = NumbaBackend()
    backend.numpy_below = 0
    backend.parallel_min = 1  # every kernel takes its parallel path, even on tiny arrays
    return backend


@pytest.fixture(params=["small", "serial", "parallel"])
def nb(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["small", "serial"])
def one(request):
    """The backend as shipped, and its serial kernels."""
    return request.getfixturevalue(request.param)


def data(dtype: str, shape=(5, 7), seed: int = 0, special: bool = True) -> np.ndarray:
    """Random values of ``dtype``; floats include NaN, +-inf, +-0 and tiny values."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "bool":
        return rng.random(n).reshape(shape) < 0.5
    if dtype in INTS:
        return rng.integers(-20, 20, n).astype(dtype).reshape(shape)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    if special and n >= 8:
        x[:8] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e30, 1.0]
        rng.shuffle(x)
    return x.reshape(shape)


def positive(dtype: str, shape=(5, 7), seed: int = 0) -> np.ndarray:
    return np.abs(data(dtype, shape, seed, special=False)) + 0.5


def assert_same(got: np.ndarray, want: np.ndarray, dtype=None) -> None:
    """Same shape, dtype (``dtype`` where the numpy backend differs) and values."""
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape
    assert got.dtype == (np.dtype(dtype) if dtype else want.dtype)
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=RTOL[got.dtype.name], atol=0, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want.astype(got.dtype))


def layouts(x: np.ndarray):
    """The same values as contiguous, transposed, strided-slice and expanded inputs."""
    yield "contiguous", x
    yield "transposed", np.ascontiguousarray(x.T).T
    big = np.repeat(np.repeat(x, 2, axis=0), 3, axis=1)
    yield "strided", big[::2, ::3]
    yield "expanded", np.broadcast_to(x[:1], x.shape)


# --- unary ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "recip", "sin"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_float_unary(nb, ref, name, dtype):
    for _, x in layouts(data(dtype)):
        assert_same(getattr(nb, name)(x), getattr(ref, name)(x))


@pytest.mark.parametrize("dtype", NUMERIC)
def test_neg(nb, ref, dtype):
    for _, x in layouts(data(dtype)):
        assert_same(nb.neg(x), ref.neg(x))


def test_neg_wraps_and_refuses_bool(one):
    x = np.array([np.iinfo(np.int32).min, 5], np.int32)
    np.testing.assert_array_equal(one.neg(x), np.array([np.iinfo(np.int32).min, -5], np.int32))
    with pytest.raises(TypeError):
        one.neg(np.array([True]))


@pytest.mark.parametrize("dtype", FLOATS)
def test_exp_log_accuracy_over_the_range(serial, dtype):
    """Vectorised exp and log stay within a few ulp of numpy from tiny to huge values."""
    eps = np.finfo(dtype).eps
    rng = np.random.default_rng(1)
    hi = 88.0 if dtype == "float32" else 709.0
    x = rng.uniform(-hi, hi, 20_000).astype(dtype)
    got, want = serial.exp(x), np.exp(x)
    normal = want > np.finfo(dtype).tiny
    assert np.max(np.abs(got[normal] - want[normal]) / want[normal]) < 4 * eps
    y = np.exp(rng.uniform(-hi, hi, 20_000)).astype(dtype)
    y = y[(y > 0) & np.isfinite(y)]
    y = np.concatenate([y, [np.finfo(dtype).smallest_subnormal, np.finfo(dtype).tiny / 3]])
    y = y.astype(dtype)
    got, want = serial.log(y), np.log(y)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-3)) < 4 * eps


@pytest.mark.parametrize("dtype", FLOATS)
def test_exp_log_special_values(nb, dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1.0, 1000.0, -1000.0], dtype)
    with np.errstate(all="ignore"):
        assert_same(nb.exp(x), np.exp(x))
        assert_same(nb.log(x), np.log(x))
        assert_same(nb.sqrt(x), np.sqrt(x))
        assert_same(nb.recip(x), np.reciprocal(x))


@pytest.mark.parametrize("src", DTYPES)
@pytest.mark.parametrize("dst", DTYPES)
def test_cast(one, ref, src, dst):
    x = data(src)
    if src in FLOATS and dst in INTS:
        x = np.nan_to_num(x, nan=1.5, posinf=7.9, neginf=-7.9)  # in range: defined results
        x[x == 1e-30] = -2.5
        x[x == -1e30] = 2.5
    target = fusion.core.dtypes.to_dtype(dst)
    assert_same(one.cast(x, target), ref.cast(x, target))


@pytest.mark.parametrize(
    "src,dst",
    [("float64", "float32"), ("float32", "bool"), ("int64", "int32"), ("bool", "float32")],
)
def test_cast_parallel_and_strided(parallel, ref, src, dst):
    target = fusion.core.dtypes.to_dtype(dst)
    for _, x in layouts(np.nan_to_num(data(src))):
        assert_same(parallel.cast(x, target), ref.cast(x, target))


# --- binary --------------------------------------------------------------------------------------


def pairs(dtype: str, shape=(5, 7)):
    """Operand pairs: arrays, an expanded scalar on either side, non-contiguous views."""
    x, y = data(dtype, shape, 1), data(dtype, shape, 2)
    yield x, y
    yield x, np.broadcast_to(y[:1, :1], shape)
    yield np.broadcast_to(x[:1, :1], shape), y
    yield np.ascontiguousarray(x.T).T, y[::-1]
    xt, yt = np.ascontiguousarray(x.T).T, np.ascontiguousarray(y.T).T
    yield xt, yt  # both transposed alike: computed in memory order, no copy
    yield xt, np.broadcast_to(y[:1, :1], shape)
    yield x, np.broadcast_to(y[:1], shape)  # a broadcast row: materialised
    yield np.broadcast_to(x[:, :1], shape), np.broadcast_to(y[:, :1], shape)  # both: computed once


@pytest.mark.parametrize("name", ["add", "mul", "maximum", "cmpeq", "cmplt"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary(nb, ref, name, dtype):
    for x, y in pairs(dtype):
        assert_same(getattr(nb, name)(x, y), getattr(ref, name)(x, y))


@pytest.mark.parametrize("name", ["sub", "div"])
@pytest.mark.parametrize("dtype", NUMERIC)
def test_sub_div(nb, ref, name, dtype):
    for x, y in pairs(dtype):
        assert_same(getattr(nb, name)(x, y), getattr(ref, name)(x, y))


def test_integer_division_floors_and_divides_by_zero_to_zero(nb):
    for dtype in INTS:
        x = np.array([-7, 7, -7, 7, 5, 0, np.iinfo(dtype).min, np.iinfo(dtype).min], dtype)
        y = np.array([2, -2, -2, 2, 0, 0, -1, 1], dtype)
        want = np.array([-4, -4, 3, 3, 0, 0, np.iinfo(dtype).min, np.iinfo(dtype).min], dtype)
        got = nb.div(x, y)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)


def test_float_division_by_zero(nb):
    x = np.array([1.0, -1.0, 0.0, np.nan], np.float32)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(nb.div(x, np.zeros(4, np.float32)), x / np.float32(0))


@pytest.mark.parametrize("dtype", FLOATS)
def test_pow_float(nb, ref, dtype):
    x = data(dtype, seed=3)
    for y in (data(dtype, seed=4), np.broadcast_to(np.array(2.0, dtype), x.shape)):
        assert_same(nb.pow(x, y), ref.pow(x, y))
    assert_same(nb.pow(positive(dtype), data(dtype)), ref.pow(positive(dtype), data(dtype)))


@pytest.mark.parametrize("dtype", INTS)
def test_pow_int(nb, ref, dtype):
    x = data(dtype, seed=5)
    y = np.abs(data(dtype, seed=6)) % 9
    assert_same(nb.pow(x, y), ref.pow(x, y))
    big = np.full(4, 3, dtype), np.full(4, 45, dtype)  # wraps around as in numpy
    assert_same(nb.pow(*big), ref.pow(*big))
    with pytest.raises(ValueError, match="negative integer powers"):
        nb.pow(x, -np.ones_like(x))


def test_pow_bool_stays_bool(one):
    x = np.array([True, True, False, False])
    y = np.array([True, False, True, False])
    got = one.pow(x, y)  # the numpy backend gives int8 here (numpy's bool power)
    np.testing.assert_array_equal(got, np.array([True, True, False, True]))
    assert got.dtype == np.bool_


def test_maximum_propagates_nan(nb):
    x = np.array([np.nan, 1.0, np.nan, -np.inf, 2.0], np.float64)
    y = np.array([1.0, np.nan, np.nan, 3.0, -np.inf], np.float64)
    np.testing.assert_array_equal(nb.maximum(x, y), np.maximum(x, y))


def test_add_wraps_around(nb):
    x = np.full(3, np.iinfo(np.int32).max, np.int32)
    assert_same(nb.add(x, x), x + x)
    assert_same(nb.mul(x, x), x * x)


# --- ternary -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_where(nb, ref, dtype):
    cond = data("bool", seed=7)
    for x, y in pairs(dtype):
        assert_same(nb.where(cond, x, y), ref.where(cond, x, y))
    scalar_x = np.broadcast_to(data(dtype)[:1, :1], cond.shape)
    scalar_y = np.broadcast_to(data(dtype, seed=8)[:1, :1], cond.shape)
    assert_same(nb.where(cond, scalar_x, scalar_y), ref.where(cond, scalar_x, scalar_y))
    for value in (True, False):  # a broadcast condition
        c = np.broadcast_to(np.array(value), cond.shape)
        x, y = data(dtype, seed=9), data(dtype, seed=10)
        assert_same(nb.where(c, x, y), ref.where(c, x, y))


# --- reduce --------------------------------------------------------------------------------------

AXES_3D = [(0,), (1,), (2,), (0, 1), (1, 2), (0, 2), (0, 1, 2), ()]


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("axes", AXES_3D)
def test_reduce_sum(nb, ref, dtype, axes):
    x = data(dtype, (4, 6, 9), special=False)
    for _, v in [
        ("contiguous", x),
        ("permuted", np.ascontiguousarray(x.transpose(2, 0, 1)).transpose(1, 2, 0)),
        ("strided", x[:, ::-1, ::2]),
    ]:
        got = nb.reduce_sum(v, axes)
        if dtype in FLOATS:  # numba sums float32 in float64: compare with an exact-ish sum
            assert got.dtype == np.dtype(dtype)
            want = np.sum(v.astype(np.float64), axis=axes, keepdims=True)
            scale = np.sum(np.abs(v.astype(np.float64)), axis=axes, keepdims=True)
            np.testing.assert_allclose(got, want, rtol=0, atol=RTOL[dtype] * scale.max())
        else:
            assert_same(got, ref.reduce_sum(v, axes), dtype=dtype)  # numpy widens int32 sums


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes", AXES_3D)
def test_reduce_max(nb, ref, dtype, axes):
    x = data(dtype, (4, 6, 9), special=False)
    for v in (x, np.ascontiguousarray(x.transpose(2, 0, 1)).transpose(1, 2, 0), x[:, ::-1, ::2]):
        assert_same(nb.reduce_max(v, axes), ref.reduce_max(v, axes))


def test_reduce_bool_sum_is_any(one):
    x = np.array([[False, False], [True, False]])
    got = one.reduce_sum(x, (0,))
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, [[True, False]])


def test_reduce_int32_sum_wraps_in_int32(one):
    x = np.full((3,), np.iinfo(np.int32).max, np.int32)
    got = one.reduce_sum(x, (0,))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, x.sum(dtype=np.int32, keepdims=True))


@pytest.mark.parametrize("dtype", FLOATS)
def test_reduce_nan_and_inf(nb, dtype):
    x = data(dtype, (6, 130))
    for axes in [(0,), (1,), (0, 1)]:
        np.testing.assert_array_equal(nb.reduce_max(x, axes), np.max(x, axis=axes, keepdims=True))
        with np.errstate(invalid="ignore"):
            want = np.sum(x.astype(np.float64), axis=axes, keepdims=True).astype(dtype)
        np.testing.assert_allclose(nb.reduce_sum(x, axes), want, rtol=RTOL[dtype])


def test_reduce_empty(one, ref):
    x = np.zeros((0, 3), np.float32)
    assert_same(one.reduce_sum(x, (0,)), ref.reduce_sum(x, (0,)))
    assert_same(one.reduce_sum(x, (1,)), ref.reduce_sum(x, (1,)))
    assert_same(one.reduce_max(x, (1,)), ref.reduce_max(x, (1,)))
    with pytest.raises(ValueError, match="zero-size array"):
        one.reduce_max(x, (0,))


@pytest.mark.parametrize(
    "shape,axes",
    [
        ((3, 1, 4), (1,)),
        ((1, 5), (0, 1)),
        ((7,), (0,)),
        ((2, 3, 4, 5), (0, 2)),
        ((2, 3, 4, 5), (1, 3)),
        ((3, 1000), (1,)),
        ((1000, 3), (0,)),
        ((2, 1000, 3), (1,)),
    ],
)
def test_reduce_shapes(nb, ref, shape, axes):
    x = data("float64", shape, special=False)
    assert_same(nb.reduce_sum(x, axes), ref.reduce_sum(x, axes))
    assert_same(nb.reduce_max(x, axes), ref.reduce_max(x, axes))


def test_float32_sum_is_accurate(parallel):
    """Float32 sums accumulate in float64: a long sum stays within float32 rounding."""
    x = np.full(1_000_003, 0.1, np.float32)
    np.testing.assert_allclose(
        parallel.reduce_sum(x, (0,)), [x.astype(np.float64).sum()], rtol=1e-7
    )


# --- movement, creation --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_movement(serial, ref, dtype):
    x = data(dtype, (2, 3, 4))
    for name, args in [
        ("reshape", ((4, 6),)),
        ("expand", ((5, 2, 3, 4),)),
        ("permute", ((2, 0, 1),)),
        ("pad", (((1, 0), (0, 2), (1, 1)), 0)),
        ("shrink", (((0, 1), (1, 3), (0, 4)),)),
        ("flip", ((0, 2),)),
    ]:
        if name == "expand":
            x4 = x.reshape(1, 2, 3, 4)
            assert_same(serial.expand(x4, *args), ref.expand(x4, *args))
            continue
        assert_same(getattr(serial, name)(x, *args), getattr(ref, name)(x, *args))


def test_pad_value_and_creation(serial, ref):
    x = data("float32", (2, 3))
    assert_same(serial.pad(x, ((1, 1), (2, 0)), -np.inf), ref.pad(x, ((1, 1), (2, 0)), -np.inf))
    for dtype in DTYPES:
        d = fusion.core.dtypes.to_dtype(dtype)
        assert_same(serial.full((2, 3), 1, d), ref.full((2, 3), 1, d))
        a = data(dtype)
        assert_same(serial.to_numpy(serial.from_numpy(a)), a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_contract(serial, ref, dtype):
    x, y = data(dtype, (2, 3, 4), special=False), data(dtype, (2, 4, 5), seed=1, special=False)
    assert_same(serial.contract(x, y), ref.contract(x, y))


def test_contract_of_large_operands_in_pooled_memory(serial):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 300, 40)).astype(np.float32)
    y = rng.standard_normal((2, 40, 200)).astype(np.float32)  # a 480 KB result: pooled
    for _ in range(2):  # the second product reuses the first one's memory
        got = serial.contract(x, np.ascontiguousarray(y.transpose(0, 2, 1)).transpose(0, 2, 1))
        assert got.shape == (2, 300, 200) and got.flags.c_contiguous
        np.testing.assert_allclose(got, x @ y, rtol=1e-5, atol=1e-5)
        del got


# --- edge shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0,), (3, 0), (), (1,), (1, 1)])
def test_empty_and_scalar_shapes(nb, ref, shape):
    x = data("float32", shape, special=False)
    y = data("float32", shape, seed=1, special=False)
    for name in ["exp", "neg", "sqrt"]:
        assert_same(getattr(nb, name)(np.abs(x)), getattr(ref, name)(np.abs(x)))
    for name in ["add", "div", "maximum", "cmplt"]:
        assert_same(getattr(nb, name)(x, y), getattr(ref, name)(x, y))
    assert_same(nb.where(x < y, x, y), ref.where(x < y, x, y))
    assert_same(nb.cast(x, fusion.int32), ref.cast(x, fusion.int32))


def test_inputs_are_not_modified(nb):
    x = data("float32", (4, 5))
    y = data("float32", (4, 5), seed=1)
    xc, yc = x.copy(), y.copy()
    nb.add(x, y), nb.exp(x), nb.reduce_sum(x, (0,)), nb.where(x < y, x, y)
    np.testing.assert_array_equal(x, xc)
    np.testing.assert_array_equal(y, yc)


# --- above the default parallel threshold --------------------------------------------------------


def test_large_arrays_take_the_parallel_path(serial, ref):
    n = (config.DEFAULT_PARALLEL_MIN // 1001 + 1) * 1001
    assert serial.parallel_min <= n or "FUSION_NUMBA_PARALLEL_MIN" in os.environ
    x = data("float32", (n,), seed=11)
    y = data("float32", (n,), seed=12)
    assert_same(serial.exp(x), ref.exp(x))
    assert_same(serial.mul(x, y), ref.mul(x, y))
    assert_same(serial.maximum(x, y), ref.maximum(x, y))
    xs = x.reshape(-1, 1001)
    for axes in [(0,), (1,), (0, 1)]:
        want = np.sum(xs.astype(np.float64), axis=axes, keepdims=True).astype(np.float32)
        np.testing.assert_allclose(serial.reduce_sum(xs, axes), want, rtol=1e-6)
        assert_same(serial.reduce_max(xs, axes), ref.reduce_max(xs, axes))


# --- packaging: lazy import, cache directory -----------------------------------------------------


def test_import_fusion_does_not_import_numba():
    code = (
        "import sys, fusion; fusion.get_backend('numpy'); fusion.available_backends(); "
        "assert 'numba' not in sys.modules, 'numba imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cache_dir_per_xdist_worker(tmp_path):
    env = {"FUSION_NUMBA_CACHE_DIR": str(tmp_path), "PYTEST_XDIST_WORKER": "gw3"}
    assert config.cache_dir(env) == str(tmp_path / "gw3")
    assert config.cache_dir({"NUMBA_CACHE_DIR": str(tmp_path)}) == str(tmp_path)
    assert config.cache_dir({}) is None
    assert config.cache_dir({"PYTEST_XDIST_WORKER": "gw0"}).endswith("gw0")


def test_numpy_below_setting():
    assert config.numpy_below({}) == config.DEFAULT_NUMPY_BELOW
    assert config.numpy_below({"FUSION_NUMBA_NUMPY_BELOW": "0"}) == 0
    with pytest.raises(ValueError, match="FUSION_NUMBA_NUMPY_BELOW"):
        config.numpy_below({"FUSION_NUMBA_NUMPY_BELOW": "many"})


def test_backend_registered_and_selected_by_environment():
    code = "import fusion; b = fusion.get_backend(); assert type(b).__name__ == 'NumbaBackend', b"
    env = dict(os.environ, FUSION_BACKEND="numba")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_numba_missing_is_a_clear_error(tmp_path):
    """Where numba cannot be imported, numpy still works and numba's error names the cause."""
    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "__init__.py").write_text("raise ImportError('no numba here')\n")
    code = (
        "import fusion\n"
        "assert fusion.get_backend('numpy') is not None\n"
        "try:\n"
        "    fusion.get_backend('numba')\n"
        "except fusion.BackendError as e:\n"
        "    assert 'no numba here' in str(e) and 'numba' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_pool_reuses_only_blocks_nobody_holds():
    from fusion.backends.numba.pool import MIN_BYTES, BufferPool

    pool = BufferPool(1 << 30)
    n = MIN_BYTES // 4
    a = pool.empty(n, np.float32).reshape(2, -1)
    b = pool.empty(n, np.float32)
    assert not np.shares_memory(a, b)
    view = a[:, ::2]
    del a
    c = pool.empty(n, np.float32)  # a's block is still referenced through view
    assert not np.shares_memory(c, view) and not np.shares_memory(c, b)
    address = view.__array_interface__["data"][0]
    del view
    d = pool.empty(n, np.int32)
    assert d.__array_interface__["data"][0] == address  # reused once free
    assert pool.held == 3 * n * 4
    small = pool.empty(10, np.float64)
    assert pool.held == 3 * n * 4 and small.shape == (10,)
    assert BufferPool(0).empty(n, np.float32).shape == (n,)


def test_blas_policy():
    from fusion.backends.numba import threads

    assert threads.blas_threads_for(100, "auto") is None  # OpenBLAS is single-threaded there
    started = threads.numba_threads_started()
    assert threads.blas_threads_for(1 << 20, "auto") == (1 if started else None)
    assert threads.blas_threads_for(threads.BLAS_PARALLEL_MIN, "auto") is None
    assert threads.blas_threads_for(1 << 20, "keep") is None
    assert threads.blas_threads_for(1 << 20, 3) == 3
    assert threads.blas_setting({"FUSION_NUMBA_BLAS_THREADS": "2"}) == 2
    assert threads.blas_setting({}) == "auto"
    with pytest.raises(ValueError, match="FUSION_NUMBA_BLAS_THREADS"):
        threads.blas_setting({"FUSION_NUMBA_BLAS_THREADS": "many"})


def test_blas_thread_count_is_restored(serial):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def counts():
        return [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]

    before = counts()
    a = np.ones((128, 128), np.float32)
    np.testing.assert_array_equal(serial.contract(a, a), a @ a)
    assert counts() == before


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


@pytest.mark.parametrize("kind", ["serial", "parallel"])
def test_read_only_and_writable_inputs_share_one_compilation(request, ref, kind):
    """A kernel's inputs reach numba read-only whatever their flags, so that frozen constants
    and realised buffers mixed with fresh arrays do not compile a kernel once per mix."""
    nb = request.getfixturevalue(kind)
    x, y = data("float64", (6, 9), seed=3), data("float64", (6, 9), seed=4)
    add = nb._par["add"] if kind == "parallel" else nb._serial["add"]
    nb.add(x, y)
    before = len(add.signatures)
    for a, b in [(_read_only(x), y), (x, _read_only(y)), (_read_only(x), _read_only(y))]:
        assert_same(nb.add(a, b), ref.add(x, y))
    assert len(add.signatures) == before
    sums = nb._k.sum_rows_par if kind == "parallel" else nb._k.sum_rows
    nb.reduce_sum(x, (1,))
    before = len(sums.signatures)
    assert_same(nb.reduce_sum(_read_only(x), (1,)), ref.reduce_sum(x, (1,)))
    assert len(sums.signatures) == before
    assert x.flags.writeable and y.flags.writeable  # the callers' arrays are left as they were
