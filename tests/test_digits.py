"""End to end: the digits classifier trains on every backend, and the example runs as a user
runs it (a subprocess), writing the curves, the history and a model that loads elsewhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fusion
from fusion import nn, optim
from fusion.data import DataLoader, StandardScaler, TensorDataset, train_test_split
from fusion.examples.digits import load_splits, single_threaded_blas
from fusion.train import evaluate, fit, predict

pytest.importorskip("sklearn")


def test_an_mlp_learns_the_digits(backend):
    """A shorter run than the example's (fewer epochs, no early stopping) reaches 95%."""
    X, y = fusion.datasets.digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    with fusion.use_backend(backend), single_threaded_blas():
        fusion.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                              nn.Linear(64, 10))
        train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True,
                                  seed=0)
        test_loader = DataLoader(TensorDataset(X_test, y_test), batch_size=512)
        history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=2e-3),
                      train_loader, test_loader, epochs=8, verbose=False)
    assert all(p.backend == backend for p in model.parameters())
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    scores = evaluate(model, test_loader, nn.CrossEntropyLoss())
    assert scores["accuracy"] >= 0.95
    # the figures agree with a count done here on the predictions
    predicted = predict(model, X_test).numpy().argmax(axis=1)
    assert scores["accuracy"] == pytest.approx(np.mean(predicted == y_test))
    assert history["val_accuracy"][-1] == pytest.approx(scores["accuracy"])


def run_example(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fusion.examples.digits", *args],
                          capture_output=True, text=True, env=environment, timeout=300)


def test_the_example_writes_curves_history_and_a_loadable_model(tmp_path):
    backend = fusion.available_backends()[-1]  # chosen through the environment variable
    out = tmp_path / "digits"
    result = run_example("--epochs", "3", "--out", str(out), env={"FUSION_BACKEND": backend})
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"backend {backend}" in text
    lines = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in lines] == ["epoch 01/3", "epoch 02/3",
                                                        "epoch 03/3"]  # not a terminal
    accuracy = float(re.search(r"test accuracy: (\d\.\d+)", text)[1])
    assert "true\\pred" in text  # the confusion matrix: a header and ten rows of 10 counts
    matrix = [line.split()[1:] for line in text.splitlines()
              if re.fullmatch(r"\s+\d(\s+\d+){10}", line)]
    assert len(matrix) == 10 and sum(int(v) for row in matrix for v in row) == 360

    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch,loss,")

    # the saved model and scaler, loaded here, give the printed test accuracy
    model = fusion.load(out / "model.safetensors")
    scaler = StandardScaler().load_state_dict(json.loads((out / "scaler.json").read_text()))
    X, y = fusion.datasets.digits()
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.2, seed=0, stratify=y)
    predicted = predict(model, scaler.transform(X_test)).numpy().argmax(axis=1)
    assert np.mean(predicted == y_test) == pytest.approx(accuracy, abs=5e-5)
    np.testing.assert_allclose(scaler.transform(X_test), load_splits(0)["test"][0])


def test_the_example_quiet_and_its_errors(tmp_path):
    result = run_example("--epochs", "1", "--quiet", "--patience", "0", "--hidden", "32",
                         "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"test accuracy 0\.\d{4} \(\w+, 1 epochs, \d+\.\ds\)\n", result.stdout)
    assert (tmp_path / "model.safetensors").is_file()

    result = run_example("--backend", "no-such-backend", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "no-such-backend" in result.stderr and "numpy" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_example("--epochs", "0")
    assert result.returncode == 2 and "--epochs must be at least 1" in result.stderr


def test_the_cnn_reaches_98_5_percent_from_the_default_seed(backend, tmp_path):
    """``fusion-digits --model cnn`` with every default: the accuracy the README states."""
    from fusion.examples.digits import parse_args, run

    with fusion.use_backend(backend):  # not --backend, which sets the process-wide default
        result = run(parse_args(["--model", "cnn", "--quiet", "--out", str(tmp_path)]))
    assert result["backend"] == backend
    assert result["test_accuracy"] >= 0.985
    model = fusion.load(tmp_path / "model.safetensors")
    assert type(model[1]).__name__ == "Conv2d"
