"""fusion.nn: Module bookkeeping, layers, activations, losses and init, on every backend.

References are numpy formulas written here, and finite differences for gradients.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import fusion
import fusion.nn as nn
from fusion.nn import init

BACKENDS = fusion.available_backends()


@pytest.fixture
def backend(request):
    """The conformance plugin's ``backend`` (one run per backend under test), also made the
    current backend for the test, so that modules build their parameters on it."""
    with fusion.use_backend(request.param):
        yield request.param


def numeric_grad(f, param: nn.Parameter, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every element of ``param``."""
    base = param.numpy().astype(np.float64)
    grad = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        values = []
        for sign in (1, -1):
            moved = base.copy()
            moved[i] += sign * eps
            param.data = fusion.Tensor(moved, dtype=param.dtype, backend=param.backend).data
            values.append(f().item())
        grad[i] = (values[0] - values[1]) / (2 * eps)
    param.data = fusion.Tensor(base, dtype=param.dtype, backend=param.backend).data
    return grad


def check_param_grads(module: nn.Module, loss_fn, atol: float = 1e-6) -> None:
    module.zero_grad()
    loss_fn().backward()
    for name, param in module.named_parameters():
        assert param.grad is not None, name
        expected = numeric_grad(loss_fn, param)
        np.testing.assert_allclose(param.grad.numpy(), expected, atol=atol, rtol=1e-5,
                                   err_msg=name)


# --- Parameter ---------------------------------------------------------------------------------
def test_parameter_is_a_leaf_that_requires_grad(backend):
    t = fusion.Tensor([[1.0, 2.0]])
    p = nn.Parameter(t)
    assert isinstance(p, fusion.Tensor)
    assert p.requires_grad and p._ctx is None
    assert p.data is t.data  # shares, does not copy
    assert p.backend == backend
    assert repr(p).startswith("Parameter containing:\nTensor([[1., 2.]]")
    frozen = nn.Parameter([1.0, 2.0], requires_grad=False)
    assert not frozen.requires_grad


def test_parameter_from_a_graph_result_is_cut_from_it():
    x = fusion.Tensor([1.0], requires_grad=True)
    p = nn.Parameter(x * 2)
    assert p._ctx is None and p.requires_grad


def test_parameter_rejects_integers():
    with pytest.raises(TypeError, match="float"):
        nn.Parameter(fusion.Tensor([1, 2]))


# --- Module bookkeeping ------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.scale = nn.Parameter(fusion.ones(4))
        self.act = nn.ReLU()
        self.register_buffer("steps", fusion.zeros(1))
        self.register_buffer("scratch", fusion.zeros(2), persistent=False)
        self.last = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.last(self.act(self.first(x)) * self.scale)


def test_registration_order_and_dotted_names():
    model = nn.Sequential(Block(), nn.Linear(2, 1))
    names = [name for name, _ in model.named_parameters()]
    # as PyTorch: a module's own parameters, then its submodules', in registration order
    assert names == ["0.scale", "0.first.weight", "0.first.bias", "0.last.weight",
                     "1.weight", "1.bias"]
    assert [type(m).__name__ for m in model.modules()] == [
        "Sequential", "Block", "Linear", "ReLU", "Linear", "Linear"]
    assert [type(m).__name__ for m in model.children()] == ["Block", "Linear"]
    assert [name for name, _ in model[0].named_children()] == ["first", "act", "last"]
    assert [name for name, _ in model.named_buffers()] == ["0.steps", "0.scratch"]
    assert list(model.parameters())[0] is model[0].scale


def test_state_dict_holds_parameters_and_persistent_buffers():
    block = Block()
    state = block.state_dict()
    assert list(state) == ["scale", "steps", "first.weight", "first.bias", "last.weight"]
    assert all(not t.requires_grad for t in state.values())
    np.testing.assert_array_equal(state["scale"].numpy(), np.ones(4, np.float32))


def test_reassigning_an_attribute_replaces_the_registration():
    block = Block()
    block.scale = nn.Parameter(fusion.zeros(4))
    assert [n for n, _ in block.named_parameters()].count("scale") == 1
    block.first = nn.Identity()
    assert "first.weight" not in dict(block.named_parameters())
    block.last.bias = None  # a slot without a parameter stays allowed
    with pytest.raises(TypeError, match="parameter 'weight'"):
        block.last.weight = fusion.zeros(2, 4)
    del block.scale
    assert "scale" not in dict(block.named_parameters())
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'nothing'"):
        block.nothing  # noqa: B018


def test_shared_parameters_count_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2
    assert model.num_parameters() == 12
    assert list(model.state_dict()) == ["0.weight", "0.bias"]


def test_assigning_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(fusion.ones(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_num_parameters_and_trainable_only():
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    assert model.num_parameters() == 784 * 256 + 256 + 256 * 10 + 10
    model[0].requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == 256 * 10 + 10


def test_train_eval_propagate():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_and_call_runs_forward(backend):
    model = nn.Linear(3, 2)
    model(fusion.ones(4, 3)).sum().backward()
    assert model.weight.grad is not None
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None

    class NoForward(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match="NoForward"):
        NoForward()(fusion.ones(1))


def test_repr_looks_like_torch():
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.1),
                          nn.Sequential(nn.BatchNorm1d(256), nn.Linear(256, 10, bias=False)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.1)\n"
        "  (3): Sequential(\n"
        "    (0): BatchNorm1d(256, eps=1e-05, momentum=0.1, affine=True, "
        "track_running_stats=True)\n"
        "    (1): Linear(in_features=256, out_features=10, bias=False)\n"
        "  )\n"
        ")")


def test_deepcopy_gives_an_independent_model_on_the_same_backend(backend):
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    twin = copy.deepcopy(model)
    x = fusion.randn(4, 3)
    np.testing.assert_array_equal(twin(x).numpy(), model(x).numpy())
    before = model[0].weight.numpy().copy()
    opt = fusion.optim.SGD(twin.parameters(), lr=1.0)
    twin(x).sum().backward()
    opt.step()
    np.testing.assert_array_equal(model[0].weight.numpy(), before)
    assert model[0].weight.grad is None and twin[0].weight.backend == backend


def test_apply_visits_every_module():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))

    def zero_linear(module):
        if isinstance(module, nn.Linear):
            init.zeros_(module.weight)

    assert model.apply(zero_linear) is model
    assert all((p.numpy() == 0).all() for n, p in model.named_parameters() if "weight" in n)


# --- load_state_dict ---------------------------------------------------------------------------
def test_load_state_dict_round_trip_keeps_parameter_identity(backend):
    source, target = Block(), Block()
    weight = target.first.weight
    assert target.load_state_dict(source.state_dict()) == ([], [])
    assert target.first.weight is weight  # an optimizer holding it still sees the new values
    for name, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[name].numpy(), value.numpy())


def test_load_state_dict_accepts_numpy_and_casts_to_the_slot_dtype():
    layer = nn.Linear(2, 1)
    layer.load_state_dict({"weight": np.array([[1.5, -2.0]]), "bias": np.array([0.25])})
    assert layer.weight.dtype is fusion.float32
    np.testing.assert_array_equal(layer(fusion.Tensor([[2.0, 1.0]])).numpy(), [[1.25]])


def test_load_state_dict_reports_every_problem_and_loads_nothing():
    model = Block()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state = {k: fusion.zeros(*v.shape) for k, v in model.state_dict().items()}
    del state["scale"]
    state["extra.weight"] = fusion.zeros(1)
    state["first.weight"] = fusion.zeros(5, 3)
    with pytest.raises(nn.StateDictError) as caught:
        model.load_state_dict(state)
    message = str(caught.value)
    assert "missing keys: 'scale'" in message
    assert "unexpected keys: 'extra.weight'" in message
    assert "'first.weight' has shape (5, 3), the module expects (4, 3)" in message
    assert caught.value.missing_keys == ["scale"]
    assert caught.value.unexpected_keys == ["extra.weight"]
    assert caught.value.mismatched_keys == ["first.weight"]
    for k, v in model.state_dict().items():  # nothing was loaded, not even the good keys
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_load_state_dict_non_strict_returns_what_it_skipped():
    model = Block()
    state = model.state_dict()
    del state["scale"]
    state["other"] = fusion.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == ["other"]
    state["first.bias"] = fusion.zeros(3)  # a wrong shape is an error even when not strict
    with pytest.raises(nn.StateDictError, match="first.bias"):
        model.load_state_dict(state, strict=False)


def test_state_dict_is_a_snapshot_after_updates():
    layer = nn.Linear(2, 2)
    saved = layer.state_dict()
    copy = saved["weight"].numpy().copy()
    with fusion.no_grad():
        layer.weight.data = (layer.weight * 0 + 7).data
    np.testing.assert_array_equal(saved["weight"].numpy(), copy)


# --- backends and dtypes -----------------------------------------------------------------------
@pytest.mark.parametrize("target", BACKENDS)
def test_to_moves_parameters_grads_and_buffers_in_place(target):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(fusion.randn(5, 3)).sum().backward()
    weight = model[0].weight
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    assert model.to(target) is model
    assert model[0].weight is weight
    assert all(t.backend == target for t in model.state_dict().values())
    assert weight.grad.backend == target
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert model[1].num_batches_tracked.shape == ()
    with fusion.use_backend(target):
        assert model(fusion.randn(2, 3)).backend == target


def test_to_dtype_casts_float_state_only():
    model = nn.BatchNorm1d(3).to(dtype=fusion.float64)
    assert model.weight.dtype is fusion.float64 and model.running_mean.dtype is fusion.float64
    assert model.num_batches_tracked.dtype is fusion.int64
    with pytest.raises(TypeError):
        model.to(dtype=fusion.int32)


def test_modules_are_built_on_the_current_backend(backend):
    assert nn.Linear(2, 2).weight.backend == backend
    assert nn.BatchNorm1d(2).running_var.backend == backend


# --- Linear and Sequential ---------------------------------------------------------------------
def test_linear_matches_numpy(backend):
    layer = nn.Linear(5, 3)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    expected = x @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(fusion.Tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    batched = np.stack([x, x])
    np.testing.assert_allclose(layer(fusion.Tensor(batched)).numpy(), np.stack([expected] * 2),
                               rtol=1e-5, atol=1e-6)
    no_bias = nn.Linear(5, 3, bias=False)
    assert no_bias.bias is None and len(list(no_bias.parameters())) == 1
    np.testing.assert_allclose(no_bias(fusion.Tensor(x)).numpy(), x @ no_bias.weight.numpy().T,
                               rtol=1e-5, atol=1e-6)


def test_linear_default_init_bounds():
    fusion.manual_seed(1)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # the std of U(-b, b)


def test_linear_gradients_match_finite_differences(backend):
    fusion.manual_seed(0)
    layer = nn.Linear(3, 2, dtype=fusion.float64)
    x = fusion.randn(4, 3, dtype=fusion.float64)
    target = fusion.randn(4, 2, dtype=fusion.float64)
    check_param_grads(layer, lambda: ((layer(x) - target) ** 2).sum())


def test_linear_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"Linear\(3, 2\) expects inputs of shape \(\.\.\., 3\)"):
        nn.Linear(3, 2)(fusion.ones(4, 5))


def test_sequential_container():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    model = nn.Sequential(a, b)
    model.append(c)
    assert len(model) == 3 and list(model) == [a, b, c]
    assert model[0] is a and model[-1] is c
    assert isinstance(model[1:], nn.Sequential) and list(model[1:]) == [b, c]
    with pytest.raises(IndexError):
        model[3]
    named = nn.Sequential({"encoder": a, "act": b})
    assert [n for n, _ in named.named_parameters()] == ["encoder.weight", "encoder.bias"]
    with pytest.raises(TypeError, match="Sequential takes Modules"):
        nn.Sequential(a, lambda x: x)
    x = fusion.randn(5, 2)
    np.testing.assert_array_equal(model(x).numpy(), c(b(a(x))).numpy())


# --- activations -------------------------------------------------------------------------------
X = np.array([[-3.0, -0.5, 0.0, 0.25, 2.0], [10.0, -10.0, 1.0, -1.0, 0.1]])


def _erf(x):
    return np.vectorize(math.erf)(x)


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x >= 0, x, 0.2 * x)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.GELU(), lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    (nn.GELU("none"), lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    (nn.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    (nn.Softmax(axis=0), lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True)),
    (nn.LogSoftmax(), lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    (nn.Identity(), lambda x: x),
]


@pytest.mark.parametrize("module, reference", ACTIVATIONS, ids=lambda v: repr(v)[:20])
def test_activations_match_numpy(backend, module, reference):
    out = module(fusion.Tensor(X, dtype=fusion.float64))
    # exact GELU goes through an erf good to 1.5e-7, scaled by x / 2 (up to 10 / 2 here)
    atol = 1e-6 if isinstance(module, nn.GELU) and module.approximate == "none" else 1e-12
    np.testing.assert_allclose(out.numpy(), reference(X), rtol=1e-9, atol=atol)


@pytest.mark.parametrize("module", [m for m, _ in ACTIVATIONS if not isinstance(m, nn.ReLU)],
                         ids=lambda v: repr(v)[:20])
def test_activation_gradients_match_finite_differences(backend, module):
    weights = fusion.Tensor(np.random.default_rng(3).standard_normal(X.shape))
    x = fusion.Tensor(X * 0.7 + 0.05)  # away from the kinks of relu and leaky relu
    assert fusion.gradcheck(lambda t: (module(t) * weights.cast(t.dtype)).sum(), [x],
                            atol=1e-5)


def test_erf_matches_math_erf_and_its_slope_at_zero():
    xs = np.linspace(-4, 4, 81)
    out = nn.functional.erf(fusion.Tensor(xs, dtype=fusion.float64))
    np.testing.assert_allclose(out.numpy(), _erf(xs), atol=2e-7)
    zero = fusion.Tensor([0.0], dtype=fusion.float64, requires_grad=True)
    nn.functional.erf(zero).sum().backward()
    assert zero.grad.item() == pytest.approx(2 / math.sqrt(math.pi), abs=1e-5)


def test_activation_reprs():
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.GELU("none")) == "GELU(approximate='none')"
    assert repr(nn.Softmax(axis=1)) == "Softmax(axis=1)"
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")


# --- Flatten and Dropout -----------------------------------------------------------------------
def test_flatten(backend):
    x = fusion.Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    np.testing.assert_array_equal(nn.Flatten()(x).numpy(), np.arange(24.0).reshape(2, 12))


def test_dropout_is_identity_in_eval_and_for_p0(backend):
    x = fusion.randn(10, 10)
    assert nn.Dropout(0.5).eval()(x) is x
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).numpy(), np.zeros((10, 10)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)


def test_dropout_drops_with_probability_p_and_rescales(backend):
    fusion.manual_seed(0)
    x = fusion.ones(200, 500)
    out = nn.Dropout(0.3)(x).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.005  # 100000 draws: std of the mean is 0.0015
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)


def test_dropout_is_reproducible_with_a_seed_and_the_same_on_every_backend():
    outs = []
    for name in BACKENDS:
        with fusion.use_backend(name):
            fusion.manual_seed(42)
            outs.append(nn.Dropout(0.5)(fusion.ones(8, 8)).numpy())
            outs.append(nn.Dropout(0.5)(fusion.ones(8, 8)).numpy())
    assert not np.array_equal(outs[0], outs[1])  # the generator moves on
    for a, b in zip(outs[0::2], outs[1::2], strict=True):
        np.testing.assert_array_equal(a, outs[0])
        np.testing.assert_array_equal(b, outs[1])


def test_dropout_gradient_is_the_mask(backend):
    fusion.manual_seed(5)
    x = fusion.randn(6, 7, requires_grad=True)
    out = nn.Dropout(0.4)(x)
    out.sum().backward()
    mask = (out.numpy() != 0) / 0.6
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-6)


# --- BatchNorm1d -------------------------------------------------------------------------------
def _batchnorm_reference(x, axes, eps, gamma, beta):
    shape = [1] * x.ndim
    shape[1] = -1
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_batchnorm_training_output_and_running_stats(backend, shape):
    rng = np.random.default_rng(0)
    norm = nn.BatchNorm1d(3, momentum=0.1, dtype=fusion.float64)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    norm.load_state_dict({**norm.state_dict(), "weight": gamma, "bias": beta})
    axes = (0,) if len(shape) == 2 else (0, 2)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        out = norm(fusion.Tensor(x))
        np.testing.assert_allclose(out.numpy(), _batchnorm_reference(x, axes, 1e-5, gamma, beta),
                                   rtol=1e-9, atol=1e-9)
        running_mean = 0.9 * running_mean + 0.1 * x.mean(axis=axes)
        running_var = 0.9 * running_var + 0.1 * x.var(axis=axes, ddof=1)
    np.testing.assert_allclose(norm.running_mean.numpy(), running_mean, rtol=1e-12)
    np.testing.assert_allclose(norm.running_var.numpy(), running_var, rtol=1e-12)
    assert norm.num_batches_tracked.item() == 3

    norm.eval()
    x = rng.standard_normal(shape)
    stat = [1, 3] + [1] * (len(shape) - 2)
    expected = ((x - running_mean.reshape(stat)) / np.sqrt(running_var.reshape(stat) + 1e-5)
                * gamma.reshape(stat) + beta.reshape(stat))
    np.testing.assert_allclose(norm(fusion.Tensor(x)).numpy(), expected, rtol=1e-9, atol=1e-9)
    assert norm.num_batches_tracked.item() == 3  # evaluation leaves the statistics alone


def test_batchnorm_cumulative_average_without_momentum():
    rng = np.random.default_rng(1)
    norm = nn.BatchNorm1d(2, momentum=None, dtype=fusion.float64)
    batches = [rng.standard_normal((5, 2)) for _ in range(4)]
    for x in batches:
        norm(fusion.Tensor(x))
    np.testing.assert_allclose(norm.running_mean.numpy(),
                               np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var.numpy(),
                               np.mean([b.var(0, ddof=1) for b in batches], axis=0), rtol=1e-12)


def test_batchnorm_without_affine_or_running_stats():
    norm = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(norm.parameters()) == [] and norm.state_dict() == {}
    x = np.random.default_rng(2).standard_normal((6, 3)).astype(np.float32)
    norm.eval()  # with no running statistics, evaluation uses the batch's
    np.testing.assert_allclose(norm(fusion.Tensor(x)).numpy(),
                               (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-4, atol=1e-5)


def test_batchnorm_gradients_match_finite_differences(backend):
    fusion.manual_seed(3)
    norm = nn.BatchNorm1d(3, dtype=fusion.float64)
    x = fusion.randn(5, 3, dtype=fusion.float64)
    w = fusion.randn(5, 3, dtype=fusion.float64)
    norm.load_state_dict({**norm.state_dict(), "weight": np.array([0.5, 1.5, -1.0])})
    check_param_grads(norm, lambda: (norm(x) * w).sum())
    norm.train()
    assert fusion.gradcheck(lambda t: (norm(t) * w).sum(), [x])


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 3\)"):
        nn.BatchNorm1d(3)(fusion.ones(4, 2))
    with pytest.raises(ValueError, match="more than one value per feature"):
        nn.BatchNorm1d(3)(fusion.ones(1, 3))
    nn.BatchNorm1d(3).eval()(fusion.ones(1, 3))  # fine in evaluation


# --- loss modules ------------------------------------------------------------------------------
def test_loss_modules_match_numpy(backend):
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -log_probs[np.arange(6), labels]
    t = fusion.Tensor(logits, dtype=fusion.float64)
    y = fusion.Tensor(labels)
    assert nn.CrossEntropyLoss()(t, y).item() == pytest.approx(ce.mean(), rel=1e-12)
    assert nn.CrossEntropyLoss(reduction="sum")(t, y).item() == pytest.approx(ce.sum(), rel=1e-12)
    np.testing.assert_allclose(nn.CrossEntropyLoss(reduction="none")(t, y).numpy(), ce,
                               rtol=1e-12)
    smooth = 0.1
    soft = np.full((6, 4), smooth / 4)
    soft[np.arange(6), labels] += 1 - smooth
    assert nn.CrossEntropyLoss(label_smoothing=smooth)(t, y).item() == pytest.approx(
        -(soft * log_probs).sum(-1).mean(), rel=1e-12)
    assert nn.NLLLoss()(fusion.Tensor(log_probs), y).item() == pytest.approx(ce.mean(),
                                                                             rel=1e-12)

    p = 1 / (1 + np.exp(-logits))
    targets = rng.integers(0, 2, (6, 4)).astype(np.float64)
    bce = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    assert nn.BCELoss()(fusion.Tensor(p), fusion.Tensor(targets)).item() == pytest.approx(
        bce.mean(), rel=1e-9)
    assert nn.BCEWithLogitsLoss(reduction="sum")(t, fusion.Tensor(targets)).item() == \
        pytest.approx(bce.sum(), rel=1e-9)
    assert nn.MSELoss()(t, fusion.Tensor(targets)).item() == pytest.approx(
        ((logits - targets) ** 2).mean(), rel=1e-12)


def test_loss_module_errors_and_repr():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1)) == (
        "CrossEntropyLoss(reduction='sum', label_smoothing=0.1)")


# --- init --------------------------------------------------------------------------------------
def test_fans_and_gains():
    assert init.calculate_fan_in_and_fan_out(fusion.zeros(5, 3)) == (3, 5)
    assert init.calculate_fan_in_and_fan_out(fusion.zeros(8, 4, 3, 3)) == (36, 72)
    assert init.calculate_fan_in_and_fan_out(fusion.zeros(7)) == (7, 7)
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swish")


# (function, kwargs, distribution, the bound or std from the published formula for (out, in))
def _xavier_bound(out, inp, gain=1.0):
    return gain * math.sqrt(6 / (inp + out))


INITS = [
    (init.uniform_, {"a": -0.3, "b": 0.7}, "uniform", lambda o, i: (-0.3, 0.7)),
    (init.normal_, {"mean": 0.5, "std": 0.2}, "normal", lambda o, i: (0.5, 0.2)),
    (init.xavier_uniform_, {"gain": 2.0}, "uniform",
     lambda o, i: (-2 * math.sqrt(6 / (o + i)), 2 * math.sqrt(6 / (o + i)))),
    (init.xavier_normal_, {}, "normal", lambda o, i: (0.0, math.sqrt(2 / (o + i)))),
    (init.kaiming_uniform_, {"nonlinearity": "relu"}, "uniform",
     lambda o, i: (-math.sqrt(6 / i), math.sqrt(6 / i))),
    (init.kaiming_uniform_, {"a": 0.3, "mode": "fan_out"}, "uniform",
     lambda o, i: (-math.sqrt(6 / (1.09 * o)), math.sqrt(6 / (1.09 * o)))),
    (init.kaiming_normal_, {"nonlinearity": "tanh"}, "normal",
     lambda o, i: (0.0, 5 / 3 / math.sqrt(i))),
    (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, "normal",
     lambda o, i: (0.0, math.sqrt(2 / o))),
    (init.he_uniform, {}, "uniform", lambda o, i: (-math.sqrt(6 / i), math.sqrt(6 / i))),
    (init.he_normal, {}, "normal", lambda o, i: (0.0, math.sqrt(2 / i))),
]


@pytest.mark.parametrize("fn, kwargs, kind, params", INITS,
                         ids=[f"{f.__name__}-{k}" for f, k, _, _ in INITS])
def test_init_formulas(backend, fn, kwargs, kind, params):
    out_features, in_features = 300, 200
    tensor = nn.Parameter(fusion.zeros(out_features, in_features))
    fusion.manual_seed(7)
    assert fn(tensor, **kwargs) is tensor
    values = tensor.numpy().astype(np.float64)
    assert tensor.dtype is fusion.float32 and tensor.requires_grad and tensor.backend == backend
    rng = np.random.default_rng(7)  # the same draws, from the formula, in numpy
    if kind == "uniform":
        low, high = params(out_features, in_features)
        expected = rng.uniform(low, high, (out_features, in_features))
        assert values.min() >= low and values.max() <= high
        assert values.max() - values.min() > 0.99 * (high - low)
    else:
        mean, std = params(out_features, in_features)
        expected = rng.normal(mean, std, (out_features, in_features))
        assert abs(values.mean() - mean) < 0.01 * std + 1e-12
        assert abs(values.std() - std) < 0.01 * std
    np.testing.assert_allclose(values, expected.astype(np.float32), rtol=1e-6, atol=1e-7)


def test_constant_zeros_ones(backend):
    t = fusion.zeros(2, 3, dtype=fusion.float64)
    np.testing.assert_array_equal(init.constant_(t, 0.25).numpy(), np.full((2, 3), 0.25))
    np.testing.assert_array_equal(init.ones_(t).numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(init.zeros_(t).numpy(), np.zeros((2, 3)))
    assert t.dtype is fusion.float64


def test_init_same_weights_on_every_backend_from_one_seed():
    weights = []
    for name in BACKENDS:
        with fusion.use_backend(name):
            fusion.manual_seed(11)
            weights.append(nn.Linear(20, 10).weight.numpy())
    for w in weights[1:]:
        np.testing.assert_array_equal(w, weights[0])


def test_init_does_not_write_into_shared_memory():
    t = fusion.zeros(3)
    alias = t.detach()
    init.ones_(t)
    np.testing.assert_array_equal(alias.numpy(), np.zeros(3))


def test_init_errors():
    with pytest.raises(TypeError, match="float"):
        init.ones_(fusion.Tensor([1, 2]))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(fusion.zeros(2, 2), mode="fan_avg")
    with pytest.raises(ValueError, match="0-d"):
        init.xavier_uniform_(fusion.zeros(()))


# --- end to end --------------------------------------------------------------------------------
def test_a_small_classifier_learns(backend):
    fusion.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 2)).astype(np.float32)
    y = ((x[:, 0] * x[:, 1]) > 0).astype(np.int64)  # XOR of the signs: needs the hidden layer
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    loss_fn = nn.CrossEntropyLoss()
    opt = fusion.optim.Adam(model.parameters(), lr=0.05)
    xs, ys = fusion.Tensor(x), fusion.Tensor(y)
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn(model(xs), ys)
        loss.backward()
        opt.step()
    accuracy = (model(xs).argmax(-1).numpy() == y).mean()
    assert accuracy >= 0.95, (accuracy, loss.item())
