"""fusion.optim: each update rule against a numpy re-derivation of its published formula, step
by step; schedules against their closed forms; clipping against numpy norms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fusion
import fusion.nn as nn
import fusion.optim as optim


@pytest.fixture
def backend(request):
    """The conformance plugin's ``backend``, also made the current backend for the test."""
    with fusion.use_backend(request.param):
        yield request.param


# --- numpy references, written from the papers / documented formulas ---------------------------
class RefSGD:
    def __init__(self, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        self.lr, self.mu, self.tau, self.wd = lr, momentum, dampening, weight_decay
        self.nesterov, self.maximize, self.b = nesterov, maximize, None

    def step(self, p, g):
        if self.maximize:
            g = -g
        g = g + self.wd * p
        if self.mu:
            self.b = g.copy() if self.b is None else self.mu * self.b + (1 - self.tau) * g
            g = g + self.mu * self.b if self.nesterov else self.b
        return p - self.lr * g


class RefAdam:
    """Kingma and Ba, Algorithm 1 (bias-corrected moments), optionally AMSGrad (Reddi et al.)
    and decoupled weight decay (Loshchilov and Hutter)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, decoupled=False):
        self.lr, (self.b1, self.b2), self.eps, self.wd = lr, betas, eps, weight_decay
        self.amsgrad, self.maximize, self.decoupled = amsgrad, maximize, decoupled
        self.m = self.v = self.v_max = None
        self.t = 0

    def step(self, p, g):
        if self.maximize:
            g = -g
        if self.decoupled:
            p = p - self.lr * self.wd * p
        else:
            g = g + self.wd * p
        if self.m is None:
            self.m, self.v, self.v_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        v = self.v
        if self.amsgrad:
            self.v_max = np.maximum(self.v_max, self.v)
            v = self.v_max
        m_hat = self.m / (1 - self.b1 ** self.t)
        v_hat = v / (1 - self.b2 ** self.t)
        return p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class RefRMSprop:
    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        self.lr, self.alpha, self.eps, self.wd = lr, alpha, eps, weight_decay
        self.mu, self.centered, self.maximize = momentum, centered, maximize
        self.s = self.a = self.b = None

    def step(self, p, g):
        if self.maximize:
            g = -g
        g = g + self.wd * p
        if self.s is None:
            self.s, self.a, self.b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        self.s = self.alpha * self.s + (1 - self.alpha) * g * g
        if self.centered:
            self.a = self.alpha * self.a + (1 - self.alpha) * g
            d = np.sqrt(self.s - self.a * self.a) + self.eps
        else:
            d = np.sqrt(self.s) + self.eps
        if self.mu > 0:
            self.b = self.mu * self.b + g / d
            return p - self.lr * self.b
        return p - self.lr * g / d


CASES = [
    (optim.SGD, RefSGD, {"lr": 0.1}),
    (optim.SGD, RefSGD, {"lr": 0.1, "momentum": 0.9}),
    (optim.SGD, RefSGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    (optim.SGD, RefSGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    (optim.SGD, RefSGD, {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}),
    (optim.SGD, RefSGD, {"lr": 0.01, "maximize": True}),
    (optim.GD, RefSGD, {"lr": 0.2}),
    (optim.GD, RefSGD, {"lr": 0.2, "weight_decay": 0.05}),
    (optim.Adam, RefAdam, {"lr": 0.01}),
    (optim.Adam, RefAdam, {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-3}),
    (optim.Adam, RefAdam, {"lr": 0.05, "weight_decay": 0.1}),
    (optim.Adam, RefAdam, {"lr": 0.05, "amsgrad": True}),
    (optim.Adam, RefAdam, {"lr": 0.05, "maximize": True}),
    (optim.AdamW, lambda **k: RefAdam(decoupled=True, **k), {"lr": 0.05, "weight_decay": 0.1}),
    (optim.AdamW, lambda **k: RefAdam(decoupled=True, **k),
     {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True, "betas": (0.5, 0.9)}),
    (optim.RMSprop, RefRMSprop, {"lr": 0.01}),
    (optim.RMSprop, RefRMSprop, {"lr": 0.01, "alpha": 0.9, "centered": True}),
    (optim.RMSprop, RefRMSprop, {"lr": 0.01, "momentum": 0.9}),
    (optim.RMSprop, RefRMSprop,
     {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1, "eps": 1e-4}),
]


def _objective_data(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, shape), rng.standard_normal(shape), rng.standard_normal(shape)


def _case_id(case):
    cls, _, kwargs = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_update_matches_the_formula_step_by_step(backend, case):
    cls, reference, kwargs = case
    # f(p) = sum(c p^2 / 2 + d p + sin(p)), gradient c p + d + cos(p): curved, not quadratic
    c, d, start = _objective_data((3, 4))
    p = nn.Parameter(fusion.Tensor(start, dtype=fusion.float64))
    ct, dt = fusion.Tensor(c), fusion.Tensor(d)
    opt = cls([p], **kwargs)
    ref, expected = reference(**kwargs), start.copy()
    for step in range(6):
        opt.zero_grad()
        (0.5 * ct * p * p + dt * p + p.sin()).sum().backward()
        opt.step()
        expected = ref.step(expected, c * expected + d + np.cos(expected))
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-10, atol=1e-12,
                                   err_msg=f"step {step + 1}")
    assert p.dtype is fusion.float64 and p.backend == backend


@pytest.mark.parametrize("case", [CASES[1], CASES[8], CASES[16]], ids=_case_id)
def test_float32_parameters_stay_float32_and_close(backend, case):
    cls, reference, kwargs = case
    c, d, start = _objective_data((5,), seed=1)
    p = nn.Parameter(fusion.Tensor(start.astype(np.float32)))
    opt = cls([p], **kwargs)
    ref, expected = reference(**kwargs), start.astype(np.float32).astype(np.float64)
    for _ in range(5):
        opt.zero_grad()
        p.grad = fusion.Tensor((c * p.numpy() + d).astype(np.float32))
        opt.step()
        expected = ref.step(expected, c * expected + d)
    assert p.dtype is fusion.float32
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gd_is_sgd_without_momentum():
    c, d, start = _objective_data((4,))
    results = []
    for cls in (optim.GD, optim.SGD):
        p = nn.Parameter(fusion.Tensor(start))
        opt = cls([p], lr=0.3)
        for _ in range(4):
            opt.zero_grad()
            (fusion.Tensor(c) * p * p).sum().backward()
            opt.step()
        results.append(p.numpy())
    np.testing.assert_array_equal(results[0], results[1])


def test_parameter_groups_use_their_own_hyper_parameters(backend):
    a = nn.Parameter(fusion.Tensor([1.0, 2.0], dtype=fusion.float64))
    b = nn.Parameter(fusion.Tensor([3.0], dtype=fusion.float64))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0.0 and opt.param_groups[1]["lr"] == 0.5
    ref_a, ref_b = RefSGD(0.1), RefSGD(0.5, momentum=0.9)
    ea, eb = a.numpy().copy(), b.numpy().copy()
    for _ in range(3):
        opt.zero_grad()
        (a * a).sum().add((b * b * b).sum()).backward()
        opt.step()
        ea, eb = ref_a.step(ea, 2 * ea), ref_b.step(eb, 3 * eb * eb)
    np.testing.assert_allclose(a.numpy(), ea, rtol=1e-12)
    np.testing.assert_allclose(b.numpy(), eb, rtol=1e-12)


def test_parameters_without_gradients_are_left_alone():
    a, b = nn.Parameter(fusion.ones(2)), nn.Parameter(fusion.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [1.0, 1.0])
    assert b not in opt.state and a in opt.state


def test_step_never_writes_into_shared_memory(backend):
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.1)
    weight = model.weight
    alias = weight.numpy()  # memory the old buffer may share with other tensors
    before = alias.copy()
    snapshot = model.state_dict()
    model(fusion.ones(4, 3)).sum().backward()
    opt.step()
    assert model.weight is weight  # the parameter object stays, its data is new
    assert not np.array_equal(weight.numpy(), before)
    np.testing.assert_array_equal(alias, before)
    np.testing.assert_array_equal(snapshot["weight"].numpy(), before)


def test_step_records_no_graph_and_calls_the_closure():
    p = nn.Parameter(fusion.Tensor([2.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0
    assert p.item() == 1.0 and p._ctx is None and p.requires_grad


def test_zero_grad_to_none_or_zeros():
    p = nn.Parameter(fusion.ones(3))
    opt = optim.SGD([p], lr=0.1)
    (p * 3).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("case", [CASES[3], CASES[11], CASES[14], CASES[18]], ids=_case_id)
def test_state_dict_resumes_exactly(backend, case):
    cls, _, kwargs = case
    c, d, start = _objective_data((3,), seed=2)

    def run(p, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * fusion.Tensor(c) * p * p + fusion.Tensor(d) * p).sum().backward()
            opt.step()

    p = nn.Parameter(fusion.Tensor(start))
    opt = cls([p], **kwargs)
    run(p, opt, 6)
    straight = p.numpy().copy()

    p = nn.Parameter(fusion.Tensor(start))
    opt = cls([p], **kwargs)
    run(p, opt, 3)
    saved, values = opt.state_dict(), p.numpy().copy()
    assert saved["param_groups"][0]["params"] == [0]
    resumed = nn.Parameter(fusion.Tensor(values))
    fresh = cls([resumed], lr=123.0)  # hyper-parameters come back from the state dict too
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"]
    run(resumed, fresh, 3)
    np.testing.assert_array_equal(resumed.numpy(), straight)


def test_load_state_dict_rejects_a_different_layout():
    opt = optim.Adam([nn.Parameter(fusion.ones(2)), nn.Parameter(fusion.ones(3))])
    other = optim.Adam([nn.Parameter(fusion.ones(2))])
    with pytest.raises(ValueError, match="parameter group 0 has 2 parameters"):
        other.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        other.load_state_dict({"param_groups": []})


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD(p, lr=0.1), "iterable of tensors"),
    (lambda p: optim.SGD([p], lr=-1.0), "learning rate"),
    (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.SGD([p], lr=0.1, momentum=-0.5), "momentum"),
    (lambda p: optim.SGD([p, p], lr=0.1), "twice"),
    (lambda p: optim.SGD([p * 2], lr=0.1), "leaf"),
    (lambda p: optim.SGD([fusion.Tensor([1, 2])], lr=0.1), "int64"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.0)), "betas"),
    (lambda p: optim.Adam([p], weight_decay=-0.1), "weight_decay"),
    (lambda p: optim.RMSprop([p], alpha=1.5), "alpha"),
    (lambda p: optim.SGD([p], lr=0.1).add_param_group({"lr": 0.1}), "'params'"),
])
def test_bad_arguments(make, message):
    p = nn.Parameter(fusion.ones(2))
    with pytest.raises((ValueError, TypeError), match=message):
        make(p)


def test_repr_lists_groups():
    opt = optim.SGD([nn.Parameter(fusion.ones(1))], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (\nParameter Group 0\n") and "    momentum: 0.9" in text


# --- learning-rate schedules -------------------------------------------------------------------
def _two_group_optimizer():
    return optim.SGD([{"params": [nn.Parameter(fusion.ones(1))]},
                      {"params": [nn.Parameter(fusion.ones(1))], "lr": 0.4}], lr=0.1)


SCHEDULES = [
    (lambda opt: optim.StepLR(opt, step_size=3, gamma=0.5),
     lambda base, e: base * 0.5 ** (e // 3)),
    (lambda opt: optim.StepLR(opt, step_size=1),
     lambda base, e: base * 0.1 ** e),
    (lambda opt: optim.ExponentialLR(opt, gamma=0.9),
     lambda base, e: base * 0.9 ** e),
    (lambda opt: optim.CosineAnnealingLR(opt, T_max=10),
     lambda base, e: base * (1 + math.cos(math.pi * e / 10)) / 2),
    (lambda opt: optim.CosineAnnealingLR(opt, T_max=7, eta_min=0.01),
     lambda base, e: 0.01 + (base - 0.01) * (1 + math.cos(math.pi * e / 7)) / 2),
]


@pytest.mark.parametrize("make, closed_form", SCHEDULES)
def test_schedule_follows_its_closed_form(make, closed_form):
    opt = _two_group_optimizer()
    scheduler = make(opt)
    for epoch in range(15):
        expected = [closed_form(0.1, epoch), closed_form(0.4, epoch)]
        assert scheduler.get_last_lr() == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert [g["lr"] for g in opt.param_groups] == scheduler.get_last_lr()
        scheduler.step()
    assert scheduler.last_epoch == 15


def test_cosine_schedule_agrees_with_the_recursive_form():
    # the form PyTorch steps with: each lr from the previous one, for epochs 1..T_max
    opt = optim.SGD([nn.Parameter(fusion.ones(1))], lr=0.5)
    t_max, eta_min = 12, 0.05
    scheduler = optim.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min)
    lr = 0.5
    for epoch in range(1, t_max + 1):
        scheduler.step()
        lr = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / (
            1 + math.cos(math.pi * (epoch - 1) / t_max))
        assert scheduler.get_last_lr()[0] == pytest.approx(lr, rel=1e-9, abs=1e-12)
    assert scheduler.get_last_lr()[0] == pytest.approx(eta_min)


def test_the_optimizer_steps_with_the_scheduled_rate():
    p = nn.Parameter(fusion.Tensor([0.0], dtype=fusion.float64))
    opt = optim.SGD([p], lr=1.0)
    scheduler = optim.StepLR(opt, step_size=2, gamma=0.5)
    position = 0.0
    for epoch in range(6):
        opt.zero_grad()
        p.sum().backward()  # gradient 1: each step moves by the rate
        opt.step()
        position -= 0.5 ** (epoch // 2)
        scheduler.step()
    assert p.item() == pytest.approx(position)


def test_scheduler_state_dict_resumes():
    opt = _two_group_optimizer()
    scheduler = optim.ExponentialLR(opt, gamma=0.8)
    for _ in range(4):
        scheduler.step()
    saved_opt, saved = opt.state_dict(), scheduler.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 4

    fresh_opt = _two_group_optimizer()
    fresh_opt.load_state_dict(saved_opt)
    fresh = optim.ExponentialLR(fresh_opt, gamma=0.8)
    fresh.load_state_dict(saved)
    for _ in range(3):
        scheduler.step()
        fresh.step()
    assert fresh.get_last_lr() == scheduler.get_last_lr() == pytest.approx(
        [0.1 * 0.8**7, 0.4 * 0.8**7])


def test_resuming_needs_initial_lr():
    opt = optim.SGD([nn.Parameter(fusion.ones(1))], lr=0.1)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.StepLR(opt, step_size=2, last_epoch=5)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)


# --- gradient clipping -------------------------------------------------------------------------
def _params_with_grads(seed=0):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal(())]
    params = []
    for g in grads:
        p = nn.Parameter(fusion.zeros(*g.shape, dtype=fusion.float64))
        p.grad = fusion.Tensor(g)
        params.append(p)
    params.append(nn.Parameter(fusion.zeros(2)))  # no gradient: ignored
    return params, grads


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_scales_all_gradients_together(backend, norm_type):
    params, grads = _params_with_grads()
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.linalg.norm(flat, ord=norm_type)
    norm = optim.clip_grad_norm_(params, max_norm=0.5, norm_type=norm_type)
    assert isinstance(norm, fusion.Tensor) and norm.shape == ()
    assert norm.item() == pytest.approx(total, rel=1e-12)
    scale = 0.5 / (total + 1e-6)
    for p, g in zip(params, grads, strict=False):
        np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-12)
    clipped = np.concatenate([p.grad.numpy().ravel() for p in params[:3]])
    assert np.linalg.norm(clipped, ord=norm_type) <= 0.5


def test_clip_grad_norm_leaves_small_gradients_alone():
    params, grads = _params_with_grads(1)
    norm = optim.clip_grad_norm_(iter(params), max_norm=1e3)
    assert norm.item() == pytest.approx(np.sqrt(sum((g**2).sum() for g in grads)))
    for p, g in zip(params, grads, strict=False):
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_clip_grad_norm_edge_cases():
    assert optim.clip_grad_norm_([nn.Parameter(fusion.ones(2))], 1.0).item() == 0.0
    p = nn.Parameter(fusion.ones(2))
    p.grad = fusion.Tensor([math.nan, 1.0])
    with pytest.raises(RuntimeError, match="nan or inf"):
        optim.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm_(p, 1.0, norm_type=0)


def test_clip_grad_value():
    p = nn.Parameter(fusion.zeros(4))
    p.grad = fusion.Tensor([-3.0, -0.2, 0.4, 5.0])
    optim.clip_grad_value_([p], 0.5)
    np.testing.assert_allclose(p.grad.numpy(), [-0.5, -0.2, 0.4, 0.5], rtol=1e-7)
