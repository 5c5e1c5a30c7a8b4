"""Memory that a user can write, and memory a graph keeps.

A tensor's memory is its own: ``Tensor(array)`` copies, ``numpy()`` and ``np.array(t)`` hand
out copies, gradients never share memory with each other or with the seed, and nothing cached
inside the library ever reaches a user. ``fusion.from_numpy`` is the one, explicit, way to share
a user's array. ``backward()`` lets go of the graph's saved values unless told to retain them.
"""

from __future__ import annotations

import gc
import math
import tracemalloc

import numpy as np
import pytest

import fusion
from fusion import nn
from fusion.core.buffer import Buffer


def _array(t: fusion.Tensor):
    """The backend array behind ``t`` (library internals, for checks of memory sharing)."""
    return t.data.data


def _shares(a, b) -> bool:
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False  # a backend without numpy arrays: nothing to compare
    return np.shares_memory(a, b)


def _public_results(backend):
    """One of each kind of result a user gets: ops, views, broadcasts, creation, grads."""
    x = fusion.Tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], requires_grad=True, backend=backend)
    w = fusion.Tensor([0.5, 0.25, 2.0], requires_grad=True, backend=backend)
    results = {
        "add": x + w,
        "mul by scalar": x * 2,
        "relu": x.relu(),
        "reshape": x.reshape(3, 2),
        "transpose": x.T,
        "slice": x[:, 1:],
        "expand": w.expand(4, 3),
        "detach": x.detach(),
        "where one-element condition": fusion.where(fusion.Tensor([True], backend=backend), x, 0.0),
        "where": fusion.where(x > 0, x, 0.0),
        "sum": x.sum(),
        "zeros": fusion.zeros(2, 3, backend=backend),
        "large full": fusion.full((200, 100), 1.5, backend=backend),
        "ones_like": fusion.ones_like(x),
    }
    (x * w).sum().backward()
    results["leaf grad"] = x.grad
    results["other leaf grad"] = w.grad
    s = fusion.Tensor(3.0, requires_grad=True, backend=backend)
    s.backward()
    results["grad of a scalar leaf"] = s.grad
    c = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    fusion.where(fusion.Tensor([False], backend=backend), c, 5.0).sum().backward()
    results["grad through where with one-element condition"] = c.grad
    return results


# --- nothing cached or shared reaches a user ----------------------------------------------------
def test_every_public_result_is_writable_without_effect_elsewhere(backend):
    results = _public_results(backend)
    before = {name: t.numpy() for name, t in results.items()}
    for name, t in results.items():
        out = t.numpy()
        assert out.flags.writeable, name
        out[...] = 123
        np.asarray(t)[...] = -7  # the array protocol hands out a copy too
    for name, t in results.items():
        np.testing.assert_array_equal(t.numpy(), before[name], err_msg=name)
    # nothing shared by the library changed: fresh computations are still right
    assert (fusion.Tensor([1.0, 2.0], backend=backend) + 1).tolist() == [2.0, 3.0]
    assert (fusion.Tensor([1.0, 2.0], backend=backend) * 2).tolist() == [2.0, 4.0]
    assert fusion.Tensor([-1.0, 2.0], backend=backend).relu().tolist() == [0.0, 2.0]
    again = _public_results(backend)
    for name, t in again.items():
        np.testing.assert_array_equal(t.numpy(), before[name], err_msg=name)


def test_scalar_leaf_grad_is_not_the_cached_constant(backend):
    x = fusion.Tensor(3.0, requires_grad=True, backend=backend)
    x.backward()
    y = fusion.Tensor(5.0, requires_grad=True, backend=backend)
    y.backward()
    assert x.grad.item() == 1.0 and y.grad.item() == 1.0
    assert not _shares(_array(x.grad), _array(y.grad))
    assert (fusion.Tensor(2.0, backend=backend) + 1).item() == 3.0


def test_cached_constants_are_read_only(backend):
    b = fusion.get_backend(backend)
    for shape in [(3,), (2, 3), (300, 200)]:
        c = Buffer.constant(b, shape, 1.0, fusion.float32)
        array = c.data
        if isinstance(array, np.ndarray):
            assert not array.flags.writeable
            with pytest.raises(ValueError, match="read-only"):
                array[...] = 5
        assert np.all(c.numpy() == 1.0)


def test_where_with_one_element_condition_returns_new_memory(backend):
    x = fusion.Tensor([1.0, 2.0, 3.0], backend=backend)
    y = fusion.Tensor([4.0, 5.0, 6.0], backend=backend)
    for flag, want in [(True, x), (False, y)]:
        out = fusion.where(fusion.Tensor([flag], backend=backend), x, y)
        assert out.tolist() == want.tolist()
        assert not _shares(_array(out), _array(x)) and not _shares(_array(out), _array(y))


def test_where_backward_zero_is_not_shared_between_grads(backend):
    grads = []
    for _ in range(2):
        x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
        fusion.where(fusion.Tensor([False], backend=backend), x, 0.0).sum().backward()
        grads.append(x.grad)
    assert grads[0].tolist() == [0.0, 0.0]
    assert not _shares(_array(grads[0]), _array(grads[1]))


def test_pooled_memory_of_a_dropped_result_does_not_change_a_copy_taken_from_it(backend):
    # 3M float32 elements are above the numba backend's pooling threshold
    x = fusion.full((3_000_000,), 2.0, backend=backend) + 0.0
    kept = (x + 1).numpy()  # the tensor itself is dropped at once: its block may be reused
    for _ in range(3):
        (x * 5).numpy()
    assert np.all(kept == 3.0)
    held = x + 1
    other = x * 7
    assert not _shares(_array(held), _array(other))
    assert np.all(held.numpy() == 3.0) and np.all(other.numpy() == 14.0)


# --- copies in, copies out, and the explicit zero-copy path ------------------------------------
@pytest.mark.parametrize("make", [
    lambda a: a,
    lambda a: a[:, ::2],  # a strided view
    lambda a: a.T,
    lambda a: a.astype(np.float64),
])
def test_tensor_of_an_array_copies_it(backend, make):
    array = make(np.arange(12, dtype=np.float32).reshape(3, 4))
    expected = array.copy()
    t = fusion.Tensor(array, backend=backend)
    array[...] = -1
    np.testing.assert_array_equal(t.numpy(), expected)
    assert not _shares(_array(t), array)


def test_tensor_of_a_tensor_copies_it(backend):
    base = np.ones(4, dtype=np.float32)
    shared = fusion.from_numpy(base, backend=backend)
    for copy in (fusion.Tensor(shared, backend=backend), fusion.tensor(shared, backend=backend),
                 fusion.Tensor(shared, dtype="float64", backend=backend)):
        base[0] = 9
        assert copy.tolist() == [1.0, 1.0, 1.0, 1.0]
        assert not _shares(_array(copy), _array(shared))
        base[0] = 1


def test_later_write_to_the_input_array_does_not_change_the_gradient(backend):
    array = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    x = fusion.Tensor(array, requires_grad=True, backend=backend)
    y = (x * x).sum()
    array[:] = 100.0
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_parameter_of_an_array_copies_it(backend):
    array = np.zeros((2, 2), dtype=np.float32)
    p = nn.Parameter(array, backend=backend)
    array[0, 0] = 5
    assert p.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_from_numpy_shares_memory_and_writes_show_through(backend):
    array = np.zeros((2, 3), dtype=np.float32)
    t = fusion.from_numpy(array, backend=backend)
    assert t.dtype is fusion.float32 and t.shape == (2, 3) and t.backend == backend
    array[0, 1] = 4.0
    view = t.reshape(6)
    array[1, 2] = 5.0
    assert t.tolist() == [[0.0, 4.0, 0.0], [0.0, 0.0, 5.0]]
    assert view.tolist() == [0.0, 4.0, 0.0, 0.0, 0.0, 5.0]
    assert (t * 2).tolist() == [[0.0, 8.0, 0.0], [0.0, 0.0, 10.0]]


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float32", "float64"])
def test_from_numpy_keeps_every_fusion_dtype(backend, dtype):
    array = np.arange(4).astype(dtype)
    t = fusion.from_numpy(array, backend=backend)
    assert t.dtype.name == dtype
    np.testing.assert_array_equal(t.numpy(), array)


def test_from_numpy_refuses_what_it_cannot_share(backend):
    with pytest.raises(TypeError, match="uint8"):
        fusion.from_numpy(np.zeros(3, dtype=np.uint8), backend=backend)
    with pytest.raises(TypeError, match="float16"):
        fusion.from_numpy(np.zeros(3, dtype=np.float16), backend=backend)
    with pytest.raises(TypeError, match=">f4"):
        fusion.from_numpy(np.zeros(3, dtype=">f4"), backend=backend)
    with pytest.raises(TypeError, match="expects a numpy array, got list"):
        fusion.from_numpy([1.0, 2.0], backend=backend)


def test_numpy_returns_a_writable_copy(backend):
    t = fusion.Tensor([[1.0, 2.0], [3.0, 4.0]], backend=backend)
    for out in (t.numpy(), t.T.numpy(), t.expand(2, 2).numpy(), t[0].numpy()):
        assert out.flags.writeable
        out[...] = 0
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t.T.numpy().flags.c_contiguous
    assert fusion.zeros(300, 200, backend=backend).numpy().flags.writeable


def test_array_protocol_copies_and_refuses_copy_false(backend):
    t = fusion.Tensor([1.0, 2.0], backend=backend)
    for out in (np.array(t), np.asarray(t), np.array(t, copy=True)):
        assert out.dtype == np.float32 and out.flags.writeable
        out[0] = 50
    assert t.tolist() == [1.0, 2.0]
    as64 = np.asarray(t, dtype=np.float64)
    assert as64.dtype == np.float64 and as64.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="copy"):
        np.asarray(t, copy=False)


def test_load_state_dict_copies_into_the_models_own_storage(backend):
    model = nn.Linear(3, 2).to(backend)
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    bias = np.array([1.0, -1.0], dtype=np.float32)
    model.load_state_dict({"weight": weight, "bias": bias})
    weight[...] = 0
    bias[...] = 0
    assert model.weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert model.bias.tolist() == [1.0, -1.0]

    source = nn.Linear(3, 2).to(backend)
    shared = np.ones((2, 3), dtype=np.float32)
    state = {"weight": fusion.from_numpy(shared, backend=backend), "bias": source.bias}
    model.load_state_dict(state)
    shared[...] = 7
    assert model.weight.tolist() == [[1.0] * 3] * 2
    assert not _shares(_array(model.bias), _array(source.bias))


def test_leaf_grads_and_the_seed_are_three_arrays(backend):
    x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    w = fusion.Tensor([3.0, 4.0], requires_grad=True, backend=backend)
    seed = np.array([0.5, -1.0], dtype=np.float32)
    g = fusion.from_numpy(seed, backend=backend)
    (x + w).backward(g)
    arrays = [_array(x.grad), _array(w.grad), _array(g)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not _shares(arrays[i], arrays[j])
    seed[...] = 99
    assert x.grad.tolist() == [0.5, -1.0] and w.grad.tolist() == [0.5, -1.0]


def test_leaf_grad_copy_keeps_signed_zeros_and_nans(backend):
    x = fusion.Tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
    x.backward(fusion.Tensor([-0.0, math.nan, -math.inf], backend=backend))
    got = x.grad.numpy()
    assert np.signbit(got[0]) and got[0] == 0 and np.isnan(got[1]) and got[2] == -np.inf


def test_gradient_of_a_leaf_used_as_the_output_is_a_copy_of_the_seed(backend):
    x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    seed = np.array([3.0, 4.0], dtype=np.float32)
    x.backward(fusion.from_numpy(seed, backend=backend))
    seed[...] = 0
    assert x.grad.tolist() == [3.0, 4.0]


def test_optimizer_step_leaves_earlier_state_dicts_and_sources_alone(backend):
    array = np.array([[1.0, 2.0]], dtype=np.float32)
    model = nn.Linear(2, 1, bias=False).to(backend)
    model.load_state_dict({"weight": array})
    before = model.state_dict()["weight"]
    opt = fusion.optim.SGD(model.parameters(), lr=0.5)
    model(fusion.Tensor([[1.0, 1.0]], backend=backend)).sum().backward()
    opt.step()
    assert model.weight.tolist() == [[0.5, 1.5]]
    assert before.tolist() == [[1.0, 2.0]] and array.tolist() == [[1.0, 2.0]]


# --- backward frees the graph ------------------------------------------------------------------
def test_backward_twice_raises_and_leaves_grads_as_they_were(backend):
    x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_backward_through_a_part_of_a_freed_graph_raises(backend):
    x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (h * 2).sum().backward()


def test_retain_graph_allows_a_second_backward_that_accumulates(backend):
    x = fusion.Tensor([1.0, -2.0, 0.5], requires_grad=True, backend=backend)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy()
    want = np.exp(x.numpy()) * (1 + x.numpy())
    np.testing.assert_allclose(first, want, rtol=1e-6)
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * want, rtol=1e-6)
    y.backward()  # the last one may free it
    np.testing.assert_allclose(x.grad.numpy(), 3 * want, rtol=1e-6)
    with pytest.raises(RuntimeError):
        y.backward()


def test_backward_frees_saved_values_and_keeps_the_structure(backend):
    x = fusion.Tensor([[1.0, 2.0]], requires_grad=True, backend=backend)
    h = (x * 3).exp()
    loss = h.sum()
    loss.backward()
    ops, stack, seen = [], [loss], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        ops.append(t._op)
        if t._ctx is not None:
            assert t._ctx.released
            assert not [k for k, v in vars(t._ctx).items() if isinstance(v, Buffer)]
            stack.extend(t._ctx.parents)
    assert {"Sum", "Exp", "Mul"} <= set(ops)
    assert x in seen or id(x) in seen  # the leaf that requires grad stays itself
    # a tensor the user holds keeps its values
    np.testing.assert_allclose(h.numpy(), np.exp([[3.0, 6.0]]), rtol=1e-6)


def test_graph_can_be_drawn_after_backward(backend):
    pytest.importorskip("graphviz")
    from fusion.viz import draw_graph

    x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    loss = (x * x).relu().sum()
    before = draw_graph(loss, show_values=False).source
    loss.backward()
    assert draw_graph(loss, show_values=False).source == before
    assert "freed by backward()" in draw_graph(loss).source


def _mlp_bytes_per_kept_loss(backend: str, count: int, retain: bool) -> float:
    fusion.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 3)).to(backend)
    x = fusion.randn(512, 16, backend=backend)
    y = fusion.randint(0, 3, (512,), backend=backend)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(3):  # warm up: compiled kernels, cached constants
        loss_fn(model(x), y).backward()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        kept = []
        for _ in range(count):
            loss = loss_fn(model(x), y)
            loss.backward(retain_graph=retain)
            kept.append(loss)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return grown / count


def test_kept_losses_do_not_keep_their_graphs_memory(backend):
    activation = 512 * 64 * 4  # bytes of one hidden activation of the model above
    freed = _mlp_bytes_per_kept_loss(backend, 100, retain=False)
    retained = _mlp_bytes_per_kept_loss(backend, 20, retain=True)
    assert retained > 4 * activation  # the measure sees what a graph holds
    assert freed < activation / 2, f"{freed:.0f} bytes per kept loss"


def test_leaf_grads_through_a_transpose_and_an_add_share_no_memory(backend):
    # z = x.T + w hands one gradient to both branches; x's arrives as a view of it. Whichever
    # leaf is reached first, the two gradients must be arrays of their own.
    x = fusion.Tensor(np.ones((3, 2), np.float32), requires_grad=True, backend=backend)
    w = fusion.Tensor(np.ones((2, 3), np.float32), requires_grad=True, backend=backend)
    (x.T + w).sum().backward()
    gx, gw = x.grad.numpy(), w.grad.numpy()
    assert not np.shares_memory(x.grad.data.data, w.grad.data.data)
    np.testing.assert_array_equal(gx, np.ones((3, 2)))
    np.testing.assert_array_equal(gw, np.ones((2, 3)))


def test_a_weight_gradient_from_a_product_is_its_own_memory(backend):
    x = fusion.Tensor(np.arange(6, dtype=np.float32).reshape(3, 2), requires_grad=True,
                      backend=backend)
    w = fusion.Tensor(np.ones((3, 2), np.float32), requires_grad=True, backend=backend)
    (x @ w.T).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.ones((3, 3)) @ np.arange(6).reshape(3, 2))
    np.testing.assert_allclose(x.grad.numpy(), np.ones((3, 3)) @ np.ones((3, 2)))
    assert not np.shares_memory(x.grad.data.data, w.grad.data.data)
