"""The multilayer-perceptron application driven as a user drives it: ``fusion-mlp`` commands in
subprocesses, on files written here (the data set, its split, bad copies of them), checking what
they print and write. The training runs are shortened versions of the example's (a higher
learning rate, fewer epochs, less patience) and still have to reach 95% validation accuracy."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusion
from fusion.backends.numba.compiling import MESSAGE as COMPILING

pytest.importorskip("sklearn")

SHORT_RUN = ["--epochs", "25", "--learning_rate", "0.005", "--patience", "5"]
EPOCH_LINE = re.compile(r"epoch (\d{2})/(\d+) - loss: (\d+\.\d{4}) - val_loss: (\d+\.\d{4}) - "
                        r"acc: (\d\.\d{4}) - val_acc: (\d\.\d{4})")


ROOT = Path(__file__).resolve().parents[1]


def run_mlp(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    # this checkout's Fusion, whatever the environment has installed
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    environment = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "fusion.examples.mlp", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=environment,
                          timeout=timeout)


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    # nothing on standard error but the numba backend's one line when it compiles kernels
    # (a fresh kernel cache)
    assert result.stderr.replace(COMPILING + "\n", "") == ""
    return result.stdout


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder with data.csv and its default split, made by the commands themselves."""
    folder = tmp_path_factory.mktemp("mlp")
    succeeded(run_mlp("dataset", "data.csv", cwd=folder))
    succeeded(run_mlp("split", "data.csv", "--valid", "0.2", "--seed", "42", cwd=folder))
    return folder


# --- dataset and split -------------------------------------------------------------------------
def test_dataset_is_the_wisconsin_data_in_the_school_format(workspace):
    from sklearn.datasets import load_breast_cancer

    rows = read_csv(workspace / "data.csv")
    assert len(rows) == 569 and {len(row) for row in rows} == {32}
    assert rows[0][0] != "id"  # no header
    raw = load_breast_cancer()
    # scikit-learn's 0 is malignant: the letters must say so, row for row
    assert [row[1] for row in rows] == ["M" if t == 0 else "B" for t in raw.target]
    assert sum(row[1] == "M" for row in rows) == 212
    features = np.array([[float(v) for v in row[2:]] for row in rows])
    np.testing.assert_array_equal(features, raw.data)  # written without losing a digit
    assert len({row[0] for row in rows}) == 569


def test_split_is_stratified_seeded_and_keeps_the_rows(workspace, tmp_path):
    data = read_csv(workspace / "data.csv")
    train, valid = read_csv(workspace / "data_train.csv"), read_csv(workspace / "data_valid.csv")
    assert (len(train), len(valid)) == (455, 114)
    assert sorted(map(tuple, train + valid)) == sorted(map(tuple, data))  # same text, no loss
    assert not {row[0] for row in train} & {row[0] for row in valid}
    # each part keeps the share of malignant samples (212 of 569)
    assert abs(sum(row[1] == "M" for row in valid) - 212 * 114 / 569) <= 1
    assert abs(sum(row[1] == "M" for row in train) - 212 * 455 / 569) <= 1

    again, other = tmp_path / "again", tmp_path / "other"
    again.mkdir(), other.mkdir()
    succeeded(run_mlp("split", workspace / "data.csv", "--out-dir", again, cwd=tmp_path))
    succeeded(run_mlp("split", workspace / "data.csv", "--seed", "7", "--out-dir", other,
                      cwd=tmp_path))
    for name in ("data_train.csv", "data_valid.csv"):
        assert (again / name).read_bytes() == (workspace / name).read_bytes()
    assert (other / "data_valid.csv").read_bytes() != (workspace / "data_valid.csv").read_bytes()


# --- train and predict --------------------------------------------------------------------------
def test_train_then_predict_on_each_backend(workspace, backend):
    name = f"model_{backend}"
    out = succeeded(run_mlp(
        "train", "--train", "data_train.csv", "--valid", "data_valid.csv", "--layer", "24", "24",
        "--backend", backend, *SHORT_RUN, "--model", f"{name}.safetensors",
        "--history", f"{name}.json", "--plot", f"{name}.png", cwd=workspace))
    lines = out.splitlines()
    assert lines[:2] == ["x_train shape : (455, 30)", "x_valid shape : (114, 30)"]
    epochs = [EPOCH_LINE.fullmatch(line) for line in lines if line.startswith("epoch ")]
    assert epochs and all(epochs), out
    assert [int(m[1]) for m in epochs] == list(range(1, len(epochs) + 1))
    assert {m[2] for m in epochs} == {"25"}
    assert float(epochs[-1][3]) < 0.5 * float(epochs[0][3])  # it learnt
    assert f"on the {backend} backend" in out

    figures = re.search(r"validation: binary cross-entropy (\d\.\d{4}), accuracy (\d\.\d{4}) "
                        r"\(epoch (\d+)\)", out)
    val_loss, val_acc, kept = float(figures[1]), float(figures[2]), int(figures[3])
    assert val_acc >= 0.95 and val_loss <= 0.1
    history = json.loads((workspace / f"{name}.json").read_text())
    assert history["epoch"] == list(range(1, len(epochs) + 1))
    # the kept weights are those of the lowest validation loss
    assert kept == 1 + int(np.argmin(history["val_loss"]))
    assert history["val_loss"][kept - 1] == pytest.approx(val_loss, abs=2e-4)
    header = (workspace / f"{name}.csv").read_text().splitlines()[0].split(",")
    assert set(header) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert (workspace / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the model loads anywhere and ends with the softmax over the two classes
    model = fusion.load(workspace / f"{name}.safetensors")
    assert type(list(model)[-1]).__name__ == "Softmax"
    probabilities = model(fusion.zeros(3, 30)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    # predict, with the subject's spelling of the model's name (no suffix)
    out = succeeded(run_mlp("predict", "--model", name, "--data", "data_valid.csv",
                            "--backend", backend, "--output", f"{name}_pred.csv",
                            cwd=workspace))
    printed = dict(re.findall(r"^(binary cross-entropy|accuracy|precision \(M\)|recall \(M\)|"
                              r"F1 \(M\))\s*: (\d\.\d{4})$", out, flags=re.M))
    assert len(printed) == 5, out
    # the scaler saved with the model is applied: the figures of training come back
    assert float(printed["binary cross-entropy"]) == pytest.approx(val_loss, abs=1e-4)
    assert float(printed["accuracy"]) == pytest.approx(val_acc, abs=1e-4)

    predictions = read_csv(workspace / f"{name}_pred.csv")
    assert predictions[0] == ["id", "predicted", "p_malignant", "diagnosis"]
    rows = predictions[1:]
    assert [r[0] for r in rows] == [r[0] for r in read_csv(workspace / "data_valid.csv")]
    y = np.array([r[3] == "M" for r in rows], dtype=float)
    p = np.array([float(r[2]) for r in rows])
    assert all((r[1] == "M") == (float(r[2]) > 0.5) for r in rows)
    # the subject's formula, computed here from the written probabilities
    p = np.clip(p, 1e-15, 1 - 1e-15)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert bce == pytest.approx(float(printed["binary cross-entropy"]), abs=5e-4)

    matrix = [[int(v) for v in line.split()[1:]] for line in out.splitlines()
              if re.fullmatch(r"\s+[BM]\s+\d+\s+\d+", line)]
    assert len(matrix) == 2 and sum(map(sum, matrix)) == 114
    assert (matrix[0][0] + matrix[1][1]) / 114 == pytest.approx(float(printed["accuracy"]),
                                                                 abs=1e-4)
    tp, fp, fn = matrix[1][1], matrix[0][1], matrix[1][0]
    assert float(printed["precision (M)"]) == pytest.approx(tp / (tp + fp), abs=1e-4)
    assert float(printed["recall (M)"]) == pytest.approx(tp / (tp + fn), abs=1e-4)


def test_early_stopping_ends_the_run_and_keeps_the_best_epoch(workspace, tmp_path):
    # a large step overfits within a few epochs: the validation loss stops falling
    out = succeeded(run_mlp(
        "train", "--train", workspace / "data_train.csv", "--valid", workspace / "data_valid.csv",
        "--epochs", "80", "--learning_rate", "0.05", "--patience", "3", "--optimizer", "adam",
        "--activation", "relu", "tanh", "--init", "heUniform", "--no-plot", cwd=tmp_path))
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epochs) < 80
    kept = int(re.search(r"weights of epoch (\d+) restored", out)[1])
    assert len(epochs) == kept + 3
    history = json.loads((tmp_path / "history.json").read_text())
    assert kept == 1 + int(np.argmin(history["val_loss"]))
    assert (tmp_path / "saved_model.safetensors").exists()
    assert not (tmp_path / "learning_curves.png").exists()


def test_plot_draws_several_runs_and_train_compares(workspace, tmp_path):
    for name, scale in (("first", 1.0), ("second", 0.5)):
        losses = [scale * 0.7 / k for k in range(1, 6)]
        history = {"epoch": [1, 2, 3, 4, 5], "loss": losses, "val_loss": losses,
                   "accuracy": [0.9] * 5, "val_accuracy": [0.9] * 5}
        (tmp_path / f"{name}.json").write_text(json.dumps(history))
    out = succeeded(run_mlp("plot", "first.json", "second.json", "-o", "both.png",
                            cwd=tmp_path))
    assert "2 runs" in out
    assert (tmp_path / "both.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    succeeded(run_mlp("train", "--train", workspace / "data_train.csv", "--valid",
                      workspace / "data_valid.csv", "--epochs", "2", "--compare", "first.json",
                      "second.json", "--history", "third.json", "--plot", "three.png",
                      cwd=tmp_path))
    assert (tmp_path / "three.png").stat().st_size > 0
    assert len(json.loads((tmp_path / "third.json").read_text())["epoch"]) == 2


def test_binary_cross_entropy_is_the_subjects_formula_and_survives_log_zero():
    from fusion.examples.mlp.model import binary_cross_entropy

    assert binary_cross_entropy(np.array([1, 0]), np.array([0.9, 0.2])) == pytest.approx(
        -(math.log(0.9) + math.log(0.8)) / 2)
    # certain and wrong: log(0) is clamped to log(1e-15), finite
    assert binary_cross_entropy(np.array([1]), np.array([0.0])) == pytest.approx(
        -math.log(1e-15))
    assert binary_cross_entropy(np.array([0, 1]), np.array([0.0, 1.0])) < 1e-12


# --- bad input: one line on stderr, a non-zero exit, nothing trained ---------------------------
def _edited(source: Path, target: Path, edit) -> Path:
    rows = read_csv(source)
    edit(rows)
    with open(target, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return target


def _set(row: int, column: int, value: str):
    def edit(rows):
        rows[row - 1][column - 1] = value
    return edit


def _drop_last_column(row: int):
    def edit(rows):
        rows[row - 1].pop()
    return edit


BAD_FILES = {
    # name: (edit of data_train.csv, expected fragment after the file's name)
    "wrong column count": (_drop_last_column(3), ", row 3: 31 columns, expected 32"),
    "non-numeric value": (_set(2, 7, "abc"), ", row 2, column 7: 'abc' is not a number"),
    "empty value": (_set(5, 32, ""), ", row 5, column 32: '' is not a number"),
    "not finite": (_set(6, 3, "nan"), ", row 6, column 3: 'nan' is not a finite number"),
    "unknown diagnosis": (_set(4, 2, "X"), ", row 4, column 2: unknown diagnosis 'X'"),
    "empty file": (lambda rows: rows.clear(), ": is empty"),
}


def check_error(result: subprocess.CompletedProcess, *fragments: str, status: int | None = None
                ) -> None:
    assert result.returncode != 0
    if status is not None:
        assert result.returncode == status
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "epoch" not in result.stdout


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("which", ["--train", "--valid"])
def test_a_bad_data_file_is_named_with_its_row_and_column(workspace, tmp_path, case, which):
    edit, expected = BAD_FILES[case]
    source = workspace / ("data_train.csv" if which == "--train" else "data_valid.csv")
    bad = _edited(source, tmp_path / "bad.csv", edit)
    files = {"--train": workspace / "data_train.csv", "--valid": workspace / "data_valid.csv",
             which: bad}
    result = run_mlp("train", "--train", files["--train"], "--valid", files["--valid"],
                     cwd=tmp_path)
    check_error(result, f"{bad}{expected}", status=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # nothing written


BAD_ARGUMENTS = {
    "one hidden layer": (["--layer", "24"], "at least two hidden layers, got 1"),
    "zero layer size": (["--layer", "24", "0"], "--layer: expected a positive integer, got '0'"),
    "zero epochs": (["--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
    "negative batch": (["--batch_size", "-8"], "expected a positive integer, got '-8'"),
    "zero learning rate": (["--learning_rate", "0"], "expected a positive number, got '0'"),
    "text learning rate": (["--learning_rate", "fast"], "expected a positive number"),
    "unknown optimizer": (["--optimizer", "adamax"], "unknown optimizer 'adamax'"),
    "unknown activation": (["--activation", "swish"], "unknown activation 'swish'"),
    "activation count": (["--layer", "8", "8", "8", "--activation", "relu", "tanh"],
                         "one per layer (3), got 2"),
    "unknown init": (["--init", "ones"], "unknown initialisation 'ones'"),
    "unknown loss": (["--loss", "hinge"], "unknown loss 'hinge'"),
    "negative patience": (["--patience", "-1"], "expected an integer >= 0"),
    "unknown backend": (["--backend", "abacus"], "unknown backend 'abacus'"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_a_bad_setting_is_refused_before_training(workspace, tmp_path, case):
    arguments, expected = BAD_ARGUMENTS[case]
    result = run_mlp("train", "--train", workspace / "data_train.csv",
                     "--valid", workspace / "data_valid.csv", *arguments, cwd=tmp_path)
    check_error(result, expected, status=2)
    assert list(tmp_path.iterdir()) == []


def test_missing_files_are_named(workspace, tmp_path):
    check_error(run_mlp("train", "--train", "absent.csv", "--valid",
                        workspace / "data_valid.csv", cwd=tmp_path), "absent.csv: no such file")
    check_error(run_mlp("split", "absent.csv", cwd=tmp_path), "absent.csv: no such file")
    check_error(run_mlp("predict", "--model", "absent", "--data", workspace / "data_valid.csv",
                        cwd=tmp_path), "absent: no such model file")
    check_error(run_mlp("plot", "absent.json", cwd=tmp_path), "absent.json: no such history")
    # where the model would go is checked before the first epoch, not after the last
    check_error(run_mlp("train", "--train", workspace / "data_train.csv", "--valid",
                        workspace / "data_valid.csv", "--model", "absent/model", cwd=tmp_path),
                "no folder 'absent' (--model)", status=1)
    check_error(run_mlp("split", workspace / "data.csv", "--valid", "1.5", cwd=tmp_path),
                "--valid: expected a fraction between 0 and 1", status=2)
    # a file that is not a model, and a model without the scaler this program saves
    check_error(run_mlp("predict", "--model", workspace / "data.csv", cwd=tmp_path),
                "data.csv", "not a safetensors file")
    plain = tmp_path / "plain.safetensors"
    fusion.save(fusion.nn.Sequential(fusion.nn.Linear(30, 2)), plain)
    check_error(run_mlp("predict", "--model", plain, "--data", workspace / "data_valid.csv",
                        cwd=tmp_path), "without the scaler")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_given_as_data_or_model_is_refused_without_blocking(workspace, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    # nobody writes to the FIFO: reading it would block until the time limit fails the test
    check_error(run_mlp("train", "--train", fifo, "--valid", workspace / "data_valid.csv",
                        cwd=tmp_path, timeout=60),
                f"{fifo}: is a FIFO (named pipe), not a regular file", status=1)
    check_error(run_mlp("predict", "--model", fifo, "--data", workspace / "data_valid.csv",
                        cwd=tmp_path, timeout=60),
                f"{fifo}", "is a FIFO (named pipe), not a regular file", status=1)


def test_predict_names_a_bad_row_in_its_data(workspace, tmp_path):
    model = tmp_path / "m.safetensors"
    succeeded(run_mlp("train", "--train", workspace / "data_train.csv", "--valid",
                      workspace / "data_valid.csv", "--epochs", "1", "--no-plot", "--model",
                      model, cwd=tmp_path))
    bad = _edited(workspace / "data_valid.csv", tmp_path / "bad.csv", _set(9, 2, "benign"))
    check_error(run_mlp("predict", "--model", model, "--data", bad, cwd=tmp_path),
                f"{bad}, row 9, column 2: unknown diagnosis 'benign'", status=1)


@pytest.mark.parametrize("optimizer, init, activation", [
    ("gd", "heUniform", "relu"), ("sgd", "heNormal", "relu"), ("momentum", "xavierNormal", "tanh"),
    ("nesterov", "lecunNormal", "tanh"), ("rmsprop", "lecunUniform", "sigmoid"),
    ("adam", "randomNormal", "relu"), ("adam", "randomUniform", "sigmoid")])
def test_every_optimizer_and_initialisation_trains(workspace, tmp_path, monkeypatch, capsys,
                                                   optimizer, init, activation):
    """In-process (the same main as the command) to keep the suite quick: a few epochs each."""
    from fusion.examples.mlp import main

    monkeypatch.chdir(tmp_path)
    status = main(["train", "--train", str(workspace / "data_train.csv"), "--valid",
                   str(workspace / "data_valid.csv"), "--optimizer", optimizer, "--init", init,
                   "--activation", activation, "--learning_rate", "0.05", "--epochs", "4",
                   "--patience", "0", "--no-plot"])
    out = capsys.readouterr().out
    assert status == 0
    epochs = [EPOCH_LINE.fullmatch(line) for line in out.splitlines()
              if line.startswith("epoch ")]
    assert len(epochs) == 4 and all(epochs)
    assert float(epochs[-1][3]) < float(epochs[0][3])  # the training loss went down
    assert float(re.search(r"accuracy (\d\.\d{4})", out)[1]) >= 0.85
    assert (tmp_path / "saved_model.safetensors").exists()


# --- models, folders and numbers that cannot work ----------------------------------------------
def _save_mlp_model(path: Path, inputs: int = 30, outputs: int = 2) -> None:
    """A model saved as train saves it (scaler included), of the given widths."""
    from fusion.data import StandardScaler
    from fusion.examples.mlp.model import build_network, save_model

    model = build_network([4, 4], ["relu", "relu"], "heUniform", inputs=inputs)
    if outputs != 2:
        model = fusion.nn.Sequential(*list(model)[:-2], fusion.nn.Linear(4, outputs),
                                     fusion.nn.Softmax(axis=-1))
    scaler = StandardScaler().fit(np.random.default_rng(0).standard_normal((8, 30)))
    save_model(model, scaler, path, {})


@pytest.mark.parametrize("inputs, outputs, expected", [
    (10, 2, "the model reads 10 features per sample; fusion-mlp's data has 30"),
    (31, 2, "the model reads 31 features per sample"),
    (30, 3, "the model gives 3 scores per sample; fusion-mlp's models give 2"),
])
def test_predict_with_a_model_of_another_width_is_one_line(workspace, tmp_path, inputs,
                                                           outputs, expected):
    model = tmp_path / "other.safetensors"
    _save_mlp_model(model, inputs, outputs)
    result = run_mlp("predict", "--model", model, "--data", workspace / "data_valid.csv",
                     cwd=tmp_path)
    check_error(result, f"{model}: {expected}", status=1)


def test_plots_into_a_folder_that_cannot_be_written_is_refused_before_training(workspace,
                                                                               tmp_path):
    # a folder under a regular file cannot be made by anyone, root included (the tests may
    # run as root, for whom permission bits do not stop a write)
    (tmp_path / "a_file").write_text("not a folder\n")
    for plots, expected in (("a_file/plots", "a_file/plots: cannot be made a folder"),
                            ("a_file", "a_file: is a file, not a folder")):
        result = run_mlp("train", "--train", workspace / "data_train.csv", "--valid",
                         workspace / "data_valid.csv", "--plots", plots, cwd=tmp_path)
        check_error(result, expected, "(--plots)", status=1)  # and no epoch was run
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permission bits do not stop root")
def test_plots_into_a_read_only_folder_is_refused_before_training(workspace, tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run_mlp("train", "--train", workspace / "data_train.csv", "--valid",
                         workspace / "data_valid.csv", "--plots", folder, cwd=tmp_path)
    finally:
        folder.chmod(0o755)
    check_error(result, f"{folder}: cannot be written", "(--plots)", status=1)


def test_the_writability_check_sees_what_permission_bits_cannot(tmp_path, monkeypatch):
    # what a read-only file system or a full disk does, whoever the user is: creating a file
    # in the folder fails; the check creates one, so it sees that
    import tempfile

    from fusion.examples.mlp import cli
    from fusion.examples.mlp.data import InputError

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(InputError, match="Read-only file system.*--plots"):
        cli._check_writable(tmp_path, "--plots")


def test_features_too_large_for_float32_stop_with_a_clear_error(workspace, tmp_path):
    huge = _edited(workspace / "data_train.csv", tmp_path / "huge.csv",
                   lambda rows: [row.__setitem__(4, "1e308") for row in rows])
    result = run_mlp("train", "--train", huge, "--valid", workspace / "data_valid.csv",
                     cwd=tmp_path)
    check_error(result, f"{huge}: column 5: the features are too large", status=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.csv"]  # no NaN model saved


def test_a_loss_that_stops_being_finite_stops_training_and_saves_nothing(workspace, tmp_path):
    # an absurd step makes the weights, then the loss, overflow within the first batches
    result = run_mlp("train", "--train", workspace / "data_train.csv", "--valid",
                     workspace / "data_valid.csv", "--learning_rate", "1e30", "--optimizer",
                     "sgd", "--activation", "relu", cwd=tmp_path)
    check_error(result, "training stopped at epoch 1, batch", "not a finite number",
                "no model was saved", status=1)
    assert list(tmp_path.iterdir()) == []


def test_save_model_writes_the_file_once_and_atomically(tmp_path, monkeypatch):
    import fusion.nn.serialization as serialization
    from fusion.examples.mlp.model import load_model

    path = tmp_path / "model.safetensors"
    _save_mlp_model(path)
    before = path.read_bytes()
    writes, real = [], serialization.atomic_write

    def counted(target, *args, **kwargs):
        writes.append(target)
        return real(target, *args, **kwargs)

    monkeypatch.setattr(serialization, "atomic_write", counted)
    _save_mlp_model(path, inputs=30)
    assert len(writes) == 1  # the architecture and predict's metadata in one write
    load_model(path)

    # interrupted just before the rename: the previous model is whole and loads
    path.write_bytes(before)

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _save_mlp_model(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.safetensors"]
    load_model(path)


# --- the README's figures ----------------------------------------------------------------------
README = ROOT / "README.md"


def readme_mlp_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## The multilayer perceptron")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def readme_commands(section: str) -> list[list[str]]:
    """The ``fusion-mlp`` command lines of the section's shell block, as argument lists."""
    import shlex

    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)[1].replace("\\\n", " ")
    return [shlex.split(line.split("#", 1)[0])[1:] for line in block.splitlines()
            if line.startswith("fusion-mlp ")]


def test_the_readme_figures_of_the_default_run(tmp_path, backend):
    """The README's commands, run as written (on each backend), give the README's figures."""
    section = readme_mlp_section()
    claimed = re.search(r"stops after (\d+)\s+epochs and keeps epoch (\d+): validation "
                        r"accuracy ([\d.]+)% and binary\s+cross-entropy ([\d.]+)", section)
    assert claimed, "the README no longer states the default run's figures in this form"
    epochs, kept, accuracy, bce = int(claimed[1]), int(claimed[2]), claimed[3], claimed[4]
    commands = {args[0]: args for args in readme_commands(section)}
    assert {"dataset", "split", "train"} <= set(commands)
    for step in ("dataset", "split"):
        succeeded(run_mlp(*commands[step], cwd=tmp_path))
    train = list(commands["train"])
    if "--backend" in train:  # the README names one; the same figures hold on every backend
        train[train.index("--backend") + 1] = backend
    else:
        train += ["--backend", backend]
    out = succeeded(run_mlp(*train, cwd=tmp_path))
    ran = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(ran) == epochs
    assert re.search(rf"weights of epoch {kept} restored", out)
    figures = re.search(r"validation: binary cross-entropy (\d\.\d{4}), accuracy (\d\.\d{4}) "
                        r"\(epoch (\d+)\)", out)
    assert int(figures[3]) == kept
    # the README rounds: 98.2% is the accuracy to 0.1%, 0.072 the cross-entropy to 3 decimals
    assert f"{float(figures[2]) * 100:.{len(accuracy.split('.')[-1])}f}" == accuracy
    assert f"{float(figures[1]):.{len(bce.split('.')[-1])}f}" == bce
