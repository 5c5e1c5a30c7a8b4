"""fit, evaluate, predict, History and callbacks, checked against numpy re-computations.

Most models here are small hand-made classes with only the torch-like surface fit relies on
(``parameters``, ``__call__``, ``train``/``eval``, ``state_dict``/``load_state_dict``), so
that these tests pin the loop itself and show that any such object trains; the tests at the
end run the same checks with fusion.nn modules and fusion.optim optimizers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import types

import numpy as np
import pytest

import fusion
from fusion.data import DataLoader, TensorDataset
from fusion.train import Callback, EarlyStopping, History, evaluate, fit, predict


class Affine:
    """``x @ weight + bias`` with float64 weights; records the mode of every call."""

    def __init__(self, weight, bias):
        self.weight = fusion.Tensor(np.asarray(weight, dtype=np.float64), requires_grad=True)
        self.bias = fusion.Tensor(np.asarray(bias, dtype=np.float64), requires_grad=True)
        self.training = True
        self.modes: list[bool] = []

    def parameters(self):
        return [self.weight, self.bias]

    def __call__(self, x):
        self.modes.append(self.training)
        return x @ self.weight + self.bias

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        return {"weight": self.weight.detach(), "bias": self.bias.detach()}

    def load_state_dict(self, state):
        for name in ("weight", "bias"):
            value = np.asarray(state[name], dtype=np.float64)
            getattr(self, name).data = fusion.Tensor(value).data


class GD:
    """Plain gradient descent: ``p <- p - lr * grad``."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr
        self.param_groups = [{"lr": lr}]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with fusion.no_grad():
            for p in self.params:
                p.data = (p - self.lr * p.grad).data


def mse(output, target):
    return ((output - target) ** 2).mean()


def cross_entropy(output, target):
    return output.cross_entropy(target)


def regression_data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    return X, y


def blobs(n_per_class=30, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    X = np.concatenate([c + rng.normal(size=(n_per_class, 2)) for c in centers])
    y = np.repeat(np.arange(3), n_per_class)
    return X, y


# --- the loop does what a hand-written loop does ------------------------------------------------
def test_one_epoch_matches_hand_derived_gradient_steps():
    X, y = regression_data(n=10)
    w0, b0 = np.zeros((3, 1)), np.zeros(1)
    model = Affine(w0, b0)
    lr = 0.1
    loader = DataLoader(TensorDataset(X, y), batch_size=4)  # batches of 4, 4, 2
    fit(model, mse, GD(model.parameters(), lr), loader, epochs=1, metrics=None, verbose=False)

    w, b = w0.copy(), b0.copy()
    for start in range(0, 10, 4):
        xb, yb = X[start:start + 4], y[start:start + 4]
        residual = xb @ w + b - yb  # d/dw mean(r^2) = 2/n x^T r
        gw = 2 * xb.T @ residual / residual.size
        gb = 2 * residual.sum(axis=0) / residual.size
        w, b = w - lr * gw, b - lr * gb
    np.testing.assert_allclose(model.weight.numpy(), w, rtol=1e-12)
    np.testing.assert_allclose(model.bias.numpy(), b, rtol=1e-12)


def test_epoch_loss_is_the_sample_mean_over_unequal_batches():
    X, y = regression_data(n=10)
    w, b = np.array([[0.5], [0.1], [-0.2]]), np.array([0.7])
    model = Affine(w, b)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    history = fit(model, mse, GD(model.parameters(), lr=0.0), loader, val_loader=loader,
                  epochs=2, metrics=None, verbose=False)
    expected = float(np.mean((X @ w + b - y) ** 2))  # lr 0: the weights never move
    assert history["loss"] == pytest.approx([expected] * 2, rel=1e-12)
    assert history["val_loss"] == pytest.approx([expected] * 2, rel=1e-12)
    assert history.epoch == [1, 2]


def test_loss_falls_and_accuracy_rises_on_a_toy_problem():
    X, y = blobs()
    model = Affine(np.zeros((2, 3)), np.zeros(3))
    train = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True, seed=0)
    before = evaluate(model, train, cross_entropy)["loss"]
    assert before == pytest.approx(math.log(3))  # zero weights: uniform over 3 classes
    history = fit(model, cross_entropy, GD(model.parameters(), lr=0.1), train, epochs=15,
                  verbose=False)
    assert all(np.diff(history["loss"]) < 0)
    assert history["loss"][-1] < 0.3 * before
    assert history["accuracy"][-1] >= 0.95
    scores = X @ model.weight.numpy() + model.bias.numpy()
    assert np.mean(scores.argmax(1) == y) >= 0.95


def test_metrics_are_computed_over_the_whole_epoch():
    X, y = blobs(n_per_class=5)
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    model = Affine(w, b)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    history = fit(model, cross_entropy, GD(model.parameters(), 0.0), loader, epochs=1,
                  metrics=("accuracy", "f1"), verbose=False)
    predicted = (X @ w + b).argmax(1)
    assert history["accuracy"] == [pytest.approx(np.mean(predicted == y))]
    # macro F1 by hand: per class 2 tp / (2 tp + fp + fn)
    per_class = []
    for k in range(3):
        tp = np.sum((predicted == k) & (y == k))
        denominator = np.sum(predicted == k) + np.sum(y == k)
        per_class.append(2 * tp / denominator if denominator else 0.0)
    assert history["f1"] == [pytest.approx(np.mean(per_class))]


def test_metric_functions_and_names():
    X, y = blobs(n_per_class=4)
    model = Affine(np.ones((2, 3)), np.zeros(3))
    loader = DataLoader(TensorDataset(X, y), batch_size=5)

    def share_of_zeros(y_true, y_pred):
        return float(np.mean(y_pred == 0))

    history = fit(model, cross_entropy, GD(model.parameters(), 0.0), loader, epochs=1,
                  metrics={"zeros": share_of_zeros}, verbose=False)
    predicted = (X @ np.ones((2, 3))).argmax(1)
    assert history["zeros"] == [pytest.approx(np.mean(predicted == 0))]
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        fit(model, cross_entropy, GD(model.parameters(), 0.0), loader, metrics=("acc",),
            verbose=False)


def test_single_output_probabilities_are_thresholded_at_one_half():
    X = np.array([[0.2], [0.9], [0.6], [0.1]])
    y = np.array([[0.0], [1.0], [0.0], [0.0]])
    model = Affine(np.ones((1, 1)), np.zeros(1))  # outputs x itself
    result = evaluate(model, DataLoader(TensorDataset(X, y), batch_size=3), mse)
    assert result["accuracy"] == pytest.approx(0.75)  # 0.6 > 0.5 is the one error
    assert result["loss"] == pytest.approx(np.mean((X - y) ** 2))


def test_validation_runs_in_eval_mode_and_training_mode_returns():
    X, y = blobs(n_per_class=4)
    model = Affine(np.zeros((2, 3)), np.zeros(3))
    train = DataLoader(TensorDataset(X, y), batch_size=6)  # 2 batches
    val = DataLoader(TensorDataset(X[:5], y[:5]), batch_size=5)  # 1 batch
    fit(model, cross_entropy, GD(model.parameters(), 0.1), train, val, epochs=2, verbose=False)
    assert model.modes == [True, True, False] * 2
    model.train()
    evaluate(model, val, cross_entropy)
    assert model.training is True


def test_batches_must_be_inputs_and_target():
    model = Affine(np.zeros((2, 1)), np.zeros(1))
    with pytest.raises(TypeError, match=r"\(inputs..., target\)"):
        fit(model, mse, GD(model.parameters(), 0.1), [fusion.zeros(3, 2)], verbose=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, mse, GD(model.parameters(), 0.1), [], epochs=-1, verbose=False)


# --- callbacks ----------------------------------------------------------------------------------
class Recorder:
    """A duck-typed callback (no base class) that logs every hook."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs):
        self.calls.append(f"epoch_begin {epoch}")

    def on_batch_end(self, batch, logs):
        assert set(logs) >= {"loss", "size"}
        self.calls.append(f"batch {batch} size {logs['size']}")

    def on_epoch_end(self, epoch, logs):
        self.calls.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs):
        self.calls.append("train_end")


def test_callback_hooks_are_called_in_order():
    X, y = regression_data(n=5)
    model = Affine(np.zeros((3, 1)), np.zeros(1))
    recorder = Recorder()
    fit(model, mse, GD(model.parameters(), 0.01), DataLoader(TensorDataset(X, y), batch_size=3),
        DataLoader(TensorDataset(X, y), batch_size=5), epochs=2, metrics=None,
        callbacks=[recorder], verbose=False)
    epoch = ["batch 0 size 3", "batch 1 size 2"]
    keys = "['loss', 'val_loss']"
    assert recorder.calls == [
        "train_begin",
        "epoch_begin 0", *epoch, f"epoch_end 0 {keys}",
        "epoch_begin 1", *epoch, f"epoch_end 1 {keys}",
        "train_end",
    ]


def test_a_callback_can_stop_training_and_sees_the_history():
    class StopAtTwo(Callback):
        def on_epoch_end(self, epoch, logs):
            assert len(self.history) == epoch + 1  # the epoch is recorded before the hook
            self.stop_training = epoch == 1

    X, y = regression_data(n=5)
    model = Affine(np.zeros((3, 1)), np.zeros(1))
    stopper = StopAtTwo()
    history = fit(model, mse, GD(model.parameters(), 0.01),
                  DataLoader(TensorDataset(X, y), batch_size=5), epochs=10, metrics=None,
                  callbacks=[stopper], verbose=False)
    assert len(history) == 2
    assert stopper.model is model


class Scripted:
    """An 'optimizer' that sets the weight to the next value of a script at every step, so that
    the validation loss follows a known curve."""

    def __init__(self, model, script):
        self.model, self.script = model, iter(script)

    def zero_grad(self):
        pass

    def step(self):
        self.model.load_state_dict({"weight": [[next(self.script)]], "bias": [0.0]})


def test_early_stopping_restores_the_best_weights():
    # one sample x=1, y=3: the validation loss is (w - 3)^2, smallest at the third epoch
    X, y = np.ones((1, 1)), np.full((1, 1), 3.0)
    loader = DataLoader(TensorDataset(X, y), batch_size=1)
    model = Affine(np.zeros((1, 1)), np.zeros(1))
    script = [0.0, 1.0, 2.9, 2.0, 1.0, 0.5, -1.0, -2.0]
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    history = fit(model, mse, Scripted(model, script), loader, loader, epochs=8, metrics=None,
                  callbacks=[stopper], verbose=False)
    # epochs 4 and 5 do not improve on epoch 3: patience 2 stops after epoch 5
    assert history.epoch == [1, 2, 3, 4, 5]
    assert history["val_loss"] == pytest.approx([(w - 3) ** 2 for w in script[:5]])
    assert stopper.best_epoch == 3 and stopper.stopped_epoch == 5
    assert stopper.best == pytest.approx(0.01)
    assert model.weight.numpy()[0, 0] == pytest.approx(2.9)


def test_early_stopping_without_restoring_keeps_the_last_weights():
    X, y = np.ones((1, 1)), np.full((1, 1), 3.0)
    loader = DataLoader(TensorDataset(X, y), batch_size=1)
    model = Affine(np.zeros((1, 1)), np.zeros(1))
    stopper = EarlyStopping(patience=1, restore_best_weights=False)
    fit(model, mse, Scripted(model, [2.0, 1.0, 0.0]), loader, loader, epochs=3, metrics=None,
        callbacks=[stopper], verbose=False)
    assert model.weight.numpy()[0, 0] == pytest.approx(1.0)
    assert stopper.stopped_epoch == 2


def test_early_stopping_maximises_accuracy_and_names_missing_keys():
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="loss").mode == "min"
    X, y = regression_data(n=4)
    model = Affine(np.zeros((3, 1)), np.zeros(1))
    with pytest.raises(KeyError, match="pass val_loader"):
        fit(model, mse, GD(model.parameters(), 0.01), DataLoader(TensorDataset(X, y)),
            metrics=None, callbacks=[EarlyStopping()], verbose=False)


# --- progress -----------------------------------------------------------------------------------
def test_one_line_per_epoch_when_stdout_is_not_a_terminal(capsys):
    X, y = blobs(n_per_class=4)
    model = Affine(np.zeros((2, 3)), np.zeros(3))
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    history = fit(model, cross_entropy, GD(model.parameters(), 0.1), loader, loader, epochs=3)
    lines = capsys.readouterr().out.splitlines()
    number = r"\d+\.\d{4}"
    pattern = (rf"epoch 0(\d)/3 - loss: ({number}) - accuracy: {number} - "
               rf"val_loss: {number} - val_accuracy: {number} - \d+\.\d\ds")
    assert len(lines) == 3
    for i, line in enumerate(lines):
        match = re.fullmatch(pattern, line)
        assert match, line
        assert int(match[1]) == i + 1
        assert float(match[2]) == pytest.approx(history["loss"][i], abs=5e-5)


def test_silent_with_verbose_false(capsys):
    X, y = blobs(n_per_class=4)
    model = Affine(np.zeros((2, 3)), np.zeros(3))
    fit(model, cross_entropy, GD(model.parameters(), 0.1),
        DataLoader(TensorDataset(X, y), batch_size=4), epochs=2, verbose=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_progress_bar_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    X, y = blobs(n_per_class=4)
    model = Affine(np.zeros((2, 3)), np.zeros(3))
    fit(model, cross_entropy, GD(model.parameters(), 0.1),
        DataLoader(TensorDataset(X, y), batch_size=4), epochs=2)
    text = screen.getvalue()
    assert "0/3" in text and "batch/s" in text  # the bar counts the 3 batches
    assert "\r" in text  # redrawn in place, not printed line by line
    # each epoch's bar stays, complete, with the epoch's figures and time after it
    summaries = [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line.strip()]
    assert len(summaries) == 2
    for epoch, summary in enumerate(summaries, start=1):
        assert summary.startswith(f"epoch {epoch:02d}/2") and "3/3" in summary, summary
        assert re.search(r"loss: \d\.\d{4} - accuracy: \d\.\d{4} - \d+\.\d\ds", summary)


def test_epoch_time_leaves_out_compilation(capsys, monkeypatch):
    import fusion.train as train_module

    # A clock where each batch takes 0.1 s, and a backend that spends 2 s of the first batch
    # compiling: both epochs took 0.3 s of work.
    clock = {"now": 100.0, "compiled": 0.0}
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(
        perf_counter=lambda: clock["now"]))
    monkeypatch.setattr(train_module, "_compile_seconds", lambda backend: clock["compiled"])

    def loss_fn(out, target):
        if clock["compiled"] == 0.0:
            clock["compiled"] = 2.0
            clock["now"] += 2.0
        clock["now"] += 0.1
        return cross_entropy(out, target)

    X, y = blobs(n_per_class=4)
    model = Affine(np.zeros((2, 3)), np.zeros(3))
    fit(model, loss_fn, GD(model.parameters(), 0.1),
        DataLoader(TensorDataset(X, y), batch_size=4), epochs=2)
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith(" - 0.30s (+2.0s compiling kernels)"), first
    assert second.endswith(" - 0.30s"), second


# --- scheduler, evaluate, predict ---------------------------------------------------------------
def test_scheduler_steps_once_per_epoch_and_lr_is_recorded():
    X, y = regression_data(n=6)
    model = Affine(np.zeros((3, 1)), np.zeros(1))
    optimizer = GD(model.parameters(), 0.1)

    class Halve:
        steps = 0

        def step(self):
            self.steps += 1
            optimizer.lr /= 2
            optimizer.param_groups[0]["lr"] = optimizer.lr

    scheduler = Halve()
    history = fit(model, mse, optimizer, DataLoader(TensorDataset(X, y), batch_size=2),
                  epochs=3, metrics=None, verbose=False, scheduler=scheduler)
    assert scheduler.steps == 3
    assert history["lr"] == [0.1, 0.05, 0.025]


def test_evaluate_matches_numpy():
    X, y = blobs(n_per_class=7)
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    model = Affine(w, b)
    result = evaluate(model, DataLoader(TensorDataset(X, y), batch_size=8), cross_entropy,
                      ("accuracy",))
    scores = X @ w + b
    log_probs = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    assert result["loss"] == pytest.approx(-np.mean(log_probs[np.arange(len(y)), y]))
    assert result["accuracy"] == pytest.approx(np.mean(scores.argmax(1) == y))
    assert set(evaluate(model, DataLoader(TensorDataset(X, y)), metrics=None)) == set()


def test_predict_in_batches_matches_numpy_and_restores_the_mode():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(11, 2))
    w, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    model = Affine(w, b)
    out = predict(model, X, batch_size=4)
    assert isinstance(out, fusion.Tensor) and out.shape == (11, 3)
    np.testing.assert_allclose(out.numpy(), X @ w + b, rtol=1e-12)
    assert model.modes == [False] * 3 and model.training
    np.testing.assert_allclose(predict(model, fusion.Tensor(X)).numpy(), X @ w + b)
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, X, batch_size=0)


# --- History ------------------------------------------------------------------------------------
def test_history_csv_and_json_round_trip(tmp_path):
    history = History()
    history.append({"loss": 1.5, "accuracy": 0.25})
    history.append({"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625})
    rows = list(csv.reader(io.StringIO(history.to_csv(tmp_path / "h.csv"))))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss"]
    assert rows[1] == ["1", "1.5", "0.25", "nan"]
    assert rows[2] == ["2", "0.5", "0.75", "0.625"]
    assert (tmp_path / "h.csv").read_text().splitlines()[2] == "2,0.5,0.75,0.625"

    history.to_json(tmp_path / "h.json")
    data = json.loads((tmp_path / "h.json").read_text())
    assert data == {"epoch": [1, 2], "loss": [1.5, 0.5], "accuracy": [0.25, 0.75],
                    "val_loss": [None, 0.625]}
    again = History.from_json(tmp_path / "h.json")
    assert again.epoch == [1, 2] and again["loss"] == [1.5, 0.5]
    assert math.isnan(again["val_loss"][0]) and again["val_loss"][1] == 0.625
    assert again.best("accuracy") == (2, 0.75)
    with pytest.raises(KeyError, match="'val_accuracy'"):
        _ = history["val_accuracy"]


# --- with fusion.nn and fusion.optim ------------------------------------------------------------
def test_fit_with_nn_and_optim_matches_hand_derived_steps():
    from fusion import nn, optim

    X, y = regression_data(n=10)
    fusion.manual_seed(0)
    model = nn.Linear(3, 1, dtype=fusion.float64)
    w, b = model.weight.numpy().T.copy(), model.bias.numpy().copy()  # y = x W^T + b
    lr = 0.05
    fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=lr),
        DataLoader(TensorDataset(X, y), batch_size=4), epochs=2, metrics=None, verbose=False)
    for _ in range(2):
        for start in range(0, 10, 4):
            xb, yb = X[start:start + 4], y[start:start + 4]
            residual = xb @ w + b - yb
            w = w - lr * 2 * xb.T @ residual / residual.size
            b = b - lr * 2 * residual.sum(axis=0) / residual.size
    np.testing.assert_allclose(model.weight.numpy().T, w, rtol=1e-10)
    np.testing.assert_allclose(model.bias.numpy(), b, rtol=1e-10)


def test_early_stopping_restores_a_module_with_its_state_dict():
    from fusion import nn

    X, y = np.ones((1, 1)), np.full((1, 1), 3.0)
    loader = DataLoader(TensorDataset(X, y), batch_size=1)
    model = nn.Linear(1, 1, dtype=fusion.float64)
    model.load_state_dict({"weight": [[0.0]], "bias": [0.0]})
    stopper = EarlyStopping(patience=1)
    fit(model, nn.MSELoss(), Scripted(model, [2.0, 2.5, 1.0, 0.0]), loader, loader, epochs=4,
        metrics=None, callbacks=[stopper], verbose=False)
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 3
    assert model.weight.numpy()[0, 0] == 2.5 and model.training


def test_dropout_is_off_while_evaluating():
    from fusion import nn

    fusion.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 2))
    X = np.ones((6, 4), dtype=np.float32)
    y = np.zeros(6, dtype=np.int64)
    first = evaluate(model, DataLoader(TensorDataset(X, y), batch_size=3), nn.CrossEntropyLoss())
    again = evaluate(model, DataLoader(TensorDataset(X, y), batch_size=2), nn.CrossEntropyLoss())
    assert first["loss"] == pytest.approx(again["loss"], rel=1e-6)  # no random mask
    np.testing.assert_array_equal(predict(model, X).numpy(), predict(model, X).numpy())
    assert model.training


def test_dashboard_flag_adds_a_dashboard_callback_with_its_arguments(monkeypatch):
    import fusion.viz.dashboard as dashboard_module

    made = []

    class Recorder(Callback):
        def __init__(self, **kwargs):
            self.kwargs, self.epochs = kwargs, []
            made.append(self)

        def on_epoch_end(self, epoch, logs):
            self.epochs.append(logs["loss"])

    monkeypatch.setattr(dashboard_module, "DashboardCallback", Recorder)
    X, y = blobs()
    model = Affine(np.zeros((2, 3)), np.zeros(3))
    train = DataLoader(TensorDataset(X, y), batch_size=16)
    history = fit(model, cross_entropy, GD(model.parameters(), lr=0.1), train, epochs=3,
                  verbose=False, dashboard={"port": 0, "serve": False})
    assert len(made) == 1 and made[0].kwargs == {"port": 0, "serve": False}
    assert made[0].epochs == pytest.approx(history["loss"])
    fit(model, cross_entropy, GD(model.parameters(), lr=0.1), train, epochs=1, verbose=False)
    assert len(made) == 1  # no dashboard unless asked for
