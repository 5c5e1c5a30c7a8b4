"""fusion.jit: a captured step replays to the values the plain step gives, on every backend.

Each comparison runs the same seeded training twice, once plain and once through
fusion.jit, and compares losses and parameters call by call; every test also checks that the
jitted run did replay (otherwise the comparison would prove nothing).
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import fusion
from fusion import nn, optim
from fusion.backends.numpy.backend import NumpyBackend
from fusion.replay import JitWarning

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-3, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
    "rmsprop": lambda p: optim.RMSprop(p, lr=1e-2, momentum=0.5, centered=True),
}


def _data(n=172, features=30, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def _model(backend, dropout=False, batchnorm=False):
    fusion.manual_seed(0)
    layers = [nn.Linear(30, 24)]
    layers += [nn.BatchNorm1d(24)] if batchnorm else []
    layers += [nn.ReLU()] + ([nn.Dropout(0.3)] if dropout else [])
    layers += [nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 2)]
    return nn.Sequential(*layers).to(backend)


def _step_of(model, opt, loss_fn=nn.functional.cross_entropy, clip=None):
    """A plain training step of ``model`` with ``opt`` (gradients clipped to norm ``clip``
    if given): the function a user would jit."""

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if clip is not None:
            optim.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    return step


def _train(backend, use_jit, optimizer="adam", scheduler=False, dropout=False,
           batchnorm=False, steps=20, batch=8, evaluate_every=0, clip=None):
    """Losses (and eval losses) of ``steps`` steps, the final parameters and buffers, and
    the jitted functions."""
    model = _model(backend, dropout, batchnorm)
    opt = OPTIMIZERS[optimizer](model.parameters())
    sched = optim.StepLR(opt, step_size=2, gamma=0.5) if scheduler else None
    loss_fn = nn.CrossEntropyLoss()
    step = _step_of(model, opt, loss_fn, clip)

    def evaluate(x, y):
        return loss_fn(model(x), y)

    if use_jit:
        step, evaluate = fusion.jit(step), fusion.jit(evaluate)
    X, y = _data()
    fusion.manual_seed(7)
    losses = []
    for i in range(steps):
        start = (i * batch) % len(X)
        xb = fusion.Tensor(X[start:start + batch], backend=backend)
        yb = fusion.Tensor(y[start:start + batch], backend=backend)
        model.train()
        losses.append(step(xb, yb).item())
        if sched is not None and i % 3 == 2:
            sched.step()
        if evaluate_every and i % evaluate_every == 0:
            model.eval()
            with fusion.no_grad():
                losses.append(evaluate(fusion.Tensor(X[:20], backend=backend),
                                       fusion.Tensor(y[:20], backend=backend)).item())
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    return losses, state, (step, evaluate)


def _compare(backend, **kwargs):
    plain, plain_state, _ = _train(backend, False, **kwargs)
    jitted, jit_state, (step, evaluate) = _train(backend, True, **kwargs)
    np.testing.assert_allclose(jitted, plain, rtol=1e-5, atol=1e-6)
    assert plain_state.keys() == jit_state.keys()
    for name in plain_state:
        np.testing.assert_allclose(jit_state[name], plain_state[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    assert step.replays >= 10, (step.replays, step.captures)
    return step, evaluate


def test_gradient_clipping_by_norm_is_replayed(backend):
    # the norm stays on the backend, so the clipped step is captured, and replays clip
    # exactly when the plain step does (a max_norm that some steps exceed, some not)
    with warnings.catch_warnings():
        warnings.simplefilter("error", JitWarning)
        _compare(backend, clip=0.5)  # the norms of these steps run from 0.27 to 0.75


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("scheduler", [False, True])
def test_jitted_steps_equal_plain_steps(backend, optimizer, scheduler):
    _compare(backend, optimizer=optimizer, scheduler=scheduler)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_dropout_and_batchnorm_in_train_mode(backend, optimizer):
    _compare(backend, optimizer=optimizer, dropout=True, batchnorm=True, scheduler=True)


def test_eval_mode_steps_are_captured_apart(backend):
    step, evaluate = _compare(backend, dropout=True, batchnorm=True, evaluate_every=2)
    assert evaluate.replays >= 5


def test_a_last_smaller_batch_is_captured_again(backend):
    # 172 samples in batches of 24: every eighth batch has 4 rows
    step, _ = _compare(backend, batch=24, steps=24)
    assert step.captures >= 4  # two recordings per kind of batch


def test_dropout_draws_new_numbers_on_every_replay(backend):
    drop = nn.Dropout(0.5)
    f = fusion.jit(lambda x: drop(x))
    x = fusion.ones(64, backend=backend)
    outs = [f(x).numpy() for _ in range(6)]
    assert f.replays >= 3
    assert len({o.tobytes() for o in outs}) == 6
    fusion.manual_seed(3)
    plain = [drop(x).numpy() for _ in range(4)]
    fusion.manual_seed(3)
    jitted = [f(x).numpy() for _ in range(4)]
    np.testing.assert_array_equal(jitted, plain)


def test_returned_tensors_are_copies(backend):
    f = fusion.jit(lambda x: (x * 2).sum())
    values = [f(fusion.full((3,), float(i), backend=backend)) for i in range(6)]
    assert f.replays >= 2
    assert [v.item() for v in values] == [0.0, 6.0, 12.0, 18.0, 24.0, 30.0]
    assert not values[-1].requires_grad


def test_state_written_or_replaced_between_calls_is_seen(backend):
    """A parameter written from outside (assign, load_state_dict), replaced by a new one, a
    state dict taken and kept, or a tensor of the enclosing scope rebound: every later call
    gives what the plain function gives, never values from before."""
    model = nn.Linear(4, 3).to(backend)
    scale = fusion.full((3,), 2.0, backend=backend)

    def forward(x):
        return (model(x) * scale).sum()

    f = fusion.jit(forward)
    x = fusion.ones(2, 4, backend=backend)
    for _ in range(4):  # on a lazy backend, ``scale`` is computed within the first call
        f(x)
    assert f.replays >= 1

    def check():
        assert f(x).item() == pytest.approx(forward(x).item(), rel=1e-6)

    with fusion.no_grad():
        model.weight.assign(model.weight * 0 + 1)  # written in place
    check()
    model.load_state_dict({"weight": np.full((3, 4), 3.0, np.float32),
                           "bias": np.zeros(3, np.float32)})
    check()
    model.weight = nn.Parameter(fusion.full((3, 4), -1.0, backend=backend))  # replaced
    check()
    check()
    scale = fusion.full((3,), 5.0, backend=backend)  # the enclosing scope rebound  # noqa: F841
    replays = f.replays
    for _ in range(4):
        check()
    assert f.replays > replays


def test_a_state_dict_taken_between_replays_keeps_its_values(backend):
    model = _model(backend)
    opt = optim.SGD(model.parameters(), lr=0.1)

    step = fusion.jit(_step_of(model, opt))

    X, y = _data()
    x, t = fusion.Tensor(X[:8], backend=backend), fusion.Tensor(y[:8], backend=backend)
    for _ in range(4):
        step(x, t)
    saved = model.state_dict()
    before = {k: v.numpy() for k, v in saved.items()}
    for _ in range(6):
        step(x, t)
    for k, v in saved.items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert not np.array_equal(model.state_dict()["0.weight"].numpy(), before["0.weight"])
    assert step.replays >= 4


def test_labels_are_checked_on_every_replay(backend):
    f = fusion.jit(lambda x, y: nn.functional.cross_entropy(x, y))
    x = fusion.zeros(4, 3, backend=backend)
    for _ in range(4):
        f(x, fusion.Tensor([0, 1, 2, 1], backend=backend))
    assert f.replays >= 1
    with pytest.raises(ValueError, match="labels must lie in"):
        f(x, fusion.Tensor([0, 1, 3, 1], backend=backend))


def test_a_step_that_reads_values_on_the_host_runs_plainly(backend):
    def f(x):
        return x * 2 if (x.sum() > 0).item() else x * 3

    jitted = fusion.jit(f)
    with pytest.warns(JitWarning, match="reads tensor values on the host"):
        jitted(fusion.ones(3, backend=backend))
    for value in (1.0, -1.0, 2.0, -2.0):
        x = fusion.full((3,), value, backend=backend)
        assert jitted(x).tolist() == f(x).tolist()
    assert jitted.replays == 0


def test_gradients_after_a_replay_are_the_steps_own(backend):
    model = nn.Linear(3, 1).to(backend)

    @fusion.jit
    def step(x):
        model.zero_grad()
        loss = model(x).sum()
        loss.backward()
        return loss

    for i in range(5):
        step(fusion.full((2, 3), float(i - 1), backend=backend))
    assert step.replays >= 2
    np.testing.assert_allclose(model.weight.grad.numpy(), np.full((1, 3), 6.0))
    np.testing.assert_allclose(model.bias.grad.numpy(), [2.0])


def test_too_many_kinds_of_call_warn_and_run_plainly(backend):
    f = fusion.jit(lambda x: x + 1, max_captures=2)
    with pytest.warns(JitWarning, match="more than 2 kinds of call"):
        for n in range(1, 5):
            assert f(fusion.zeros(n, backend=backend)).tolist() == [1.0] * n


def test_a_backend_that_cannot_assign_runs_plainly_with_one_warning():
    class NoAssign(NumpyBackend):
        capabilities = frozenset({"float64", "int64", "views"})
        name = "noassign"

    backend = NoAssign()
    f = fusion.jit(lambda x: (x * 2).sum())
    with pytest.warns(JitWarning, match="lacks the capability 'assign'"):
        assert f(fusion.ones(3, backend=backend)).item() == 6.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            assert f(fusion.ones(3, backend=backend)).item() == 6.0
    assert f.replays == 0


def test_assign_writes_in_place_unless_shared(backend):
    t = fusion.zeros(3, backend=backend)
    t.data.realize()
    storage = t.data._data
    t.assign(fusion.ones(3, backend=backend))
    assert t.data._data is storage and t.tolist() == [1.0] * 3
    kept = t.detach()  # shares the buffer: the next assign gives t new storage
    t.assign(fusion.full((3,), 2.0, backend=backend))
    assert kept.tolist() == [1.0] * 3 and t.tolist() == [2.0] * 3


def test_no_memory_growth_over_2000_replays(backend):
    model = _model(backend, dropout=True)
    opt = optim.Adam(model.parameters(), lr=1e-3)

    step = fusion.jit(_step_of(model, opt))

    X, y = _data()
    x, t = fusion.Tensor(X[:8], backend=backend), fusion.Tensor(y[:8], backend=backend)
    for _ in range(50):
        step(x, t)
    tracemalloc.start()
    try:
        for _ in range(100):
            step(x, t)
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):
            step(x, t)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert step.replays >= 2000
    # allocators keep some freed blocks: bounded, where anything kept per replay (a tensor,
    # its buffer, its array) would add more than 500 kB
    assert after - base < 256 * 1024, (base, after)


def test_a_convolutional_step_on_changing_batches(backend):
    """Convolution and pooling move data through transposes and reshapes whose results are
    views or copies depending on layout: a replay must recompute what is a copy."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 64)).astype(np.float32)
    y = rng.integers(0, 10, 96)

    def train(use_jit):
        fusion.manual_seed(0)
        model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3, padding=1),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(64, 10)).to(backend)
        opt = optim.Adam(model.parameters(), lr=1e-2)

        def step(x, t):
            opt.zero_grad()
            out = model(x)
            loss = nn.functional.cross_entropy(out, t)
            loss.backward()
            opt.step()
            return loss, out.detach()

        f = fusion.jit(step) if use_jit else step
        results = []
        for i in range(8):
            s = (i * 32) % 96
            loss, out = f(fusion.Tensor(X[s:s + 32], backend=backend),
                          fusion.Tensor(y[s:s + 32], backend=backend))
            results.append(np.append(out.numpy().ravel(), loss.item()))
        return np.array(results), f

    plain, _ = train(False)
    jitted, f = train(True)
    np.testing.assert_allclose(jitted, plain, rtol=1e-5, atol=1e-6)
    assert f.replays >= 4


def test_a_state_update_reading_its_own_transpose(backend):
    # the new value reads the old one in another order: computing it straight into the
    # state's storage would read elements the step had already overwritten
    def run(use_jit):
        w = fusion.Tensor(np.arange(36, dtype=np.float32).reshape(6, 6) / 7, backend=backend)

        def step(x):
            new = w.T * 0.5 + x
            fusion.realize(new)  # nothing pending holds w: assign writes its own storage
            w.assign(new)
            return w.sum()

        jitted = fusion.jit(step)
        x = fusion.Tensor(np.ones((6, 6), np.float32), backend=backend)
        losses = [(jitted if use_jit else step)(x).item() for _ in range(6)]
        assert (jitted.replays >= 3) if use_jit else not jitted.replays  # replays are tested
        return losses, w.numpy()

    (losses, final), (plain_losses, plain_final) = run(True), run(False)
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-6)
    np.testing.assert_allclose(final, plain_final, rtol=1e-6)


def test_work_on_another_backend_than_the_arguments_runs_plainly():
    # no tensor arguments: the capture watches the default backend (numpy), while the step
    # computes on numba; replaying what the default backend recorded would return stale values
    other = next((b for b in fusion.available_backends() if b != "numpy"
                  and "assign" in fusion.get_backend(b).capabilities), None)
    if other is None:
        pytest.skip("needs a second backend that can assign")
    w = fusion.Tensor(np.ones(3, np.float32), backend=other)

    @fusion.jit
    def step():
        w.assign(w * 2)
        return w.sum()

    with pytest.warns(JitWarning, match=f"computes on backend '{other}'"):
        values = [step().item() for _ in range(4)]
    assert values == [6.0, 12.0, 24.0, 48.0]
    assert step.replays == 0
