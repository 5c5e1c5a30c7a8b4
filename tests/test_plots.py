"""Plots: the data drawn (line points, bar heights, image cells) is the data given."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fusion  # noqa: E402
from fusion.viz.plots import (  # noqa: E402
    plot_class_histograms,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_pairs,
    plot_scatter,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_label(ax) -> dict[str, tuple[list[float], list[float]]]:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.lines}


class FakeHistory:
    """Shaped like fusion.train's History: per-epoch lists as attributes."""

    def __init__(self, loss, accuracy, val_loss, val_accuracy):
        self.loss, self.accuracy = loss, accuracy
        self.val_loss, self.val_accuracy = val_loss, val_accuracy


def test_learning_curves_from_a_dict():
    history = {"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.65],
               "accuracy": [0.5, 0.8, 0.9], "val_accuracy": [0.4, 0.7, 0.8]}
    fig = plot_learning_curves(history)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "loss" and acc_ax.get_title() == "accuracy"
    assert lines_by_label(loss_ax) == {"train": ([1, 2, 3], [0.9, 0.5, 0.4]),
                                       "validation": ([1, 2, 3], [1.0, 0.7, 0.65])}
    assert lines_by_label(acc_ax)["validation"] == ([1, 2, 3], [0.4, 0.7, 0.8])
    train, validation = loss_ax.lines
    assert train.get_linestyle() == "-" and validation.get_linestyle() == "--"
    assert train.get_color() == validation.get_color()  # one colour per run


def test_learning_curves_of_several_runs_share_panels():
    runs = {
        "sgd": FakeHistory([1.0, 0.8], [0.3, 0.5], [1.1, 0.9], [0.2, 0.4]),
        "adam": {"loss": [0.7, 0.3, 0.2], "accuracy": [0.6, 0.9, 0.95]},
    }
    fig = plot_learning_curves(runs, metrics=["loss"])
    (ax,) = fig.axes
    lines = lines_by_label(ax)
    assert lines == {"sgd train": ([1, 2], [1.0, 0.8]), "sgd validation": ([1, 2], [1.1, 0.9]),
                     "adam train": ([1, 2, 3], [0.7, 0.3, 0.2])}
    colours = {line.get_label(): line.get_color() for line in ax.lines}
    assert colours["sgd train"] == colours["sgd validation"] != colours["adam train"]
    as_list = plot_learning_curves([runs["adam"], runs["sgd"]], labels=["a", "b"])
    assert [p.get_title() for p in as_list.axes] == ["loss", "accuracy"]
    assert "b validation" in lines_by_label(as_list.axes[1])


def test_learning_curves_from_a_fit_history():
    from fusion.train import History

    history = History()
    for epoch, (loss, acc, lr) in enumerate([(0.8, 0.6, 0.1), (0.6, 0.7, 0.05)], start=3):
        history.append({"loss": loss, "accuracy": acc, "lr": lr}, epoch=epoch)
    fig = plot_learning_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]  # lr only when asked
    assert lines_by_label(fig.axes[1]) == {"train": ([3, 4], [0.6, 0.7])}  # its epochs on x
    from_json = {"epoch": [1, 2], "loss": [1.0, None], "val_loss": [2.0, 1.5]}
    (ax,) = plot_learning_curves(from_json).axes
    x, y = lines_by_label(ax)["train"]
    assert x == [1, 2] and y[0] == 1.0 and np.isnan(y[1])
    lr_fig = plot_learning_curves(history, metrics=["lr"])
    assert lines_by_label(lr_fig.axes[0]) == {"train": ([3, 4], [0.1, 0.05])}


def test_learning_curves_on_given_axes_and_errors():
    fig, ax = plt.subplots()
    out = plot_learning_curves({"loss": [3.0, 2.0]}, ax=ax)
    assert out is fig and lines_by_label(ax) == {"train": ([1, 2], [3.0, 2.0])}
    with pytest.raises(ValueError, match="1 axes for 2 metrics"):
        plot_learning_curves({"loss": [1.0], "accuracy": [0.5]}, ax=ax)
    with pytest.raises(ValueError, match="no per-epoch values"):
        plot_learning_curves({"name": "run"})
    with pytest.raises(ValueError, match="1 labels for 2 runs"):
        plot_learning_curves([{"loss": [1.0]}, {"loss": [2.0]}], labels=["x"])


def test_class_histograms_heights_are_counts_per_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = rng.integers(0, 3, 200)
    x[5, 1] = np.nan
    fig = plot_class_histograms(fusion.Tensor(x), y, feature=1, bins=8,
                                class_names=["a", "b", "c"])
    ax = fig.axes[0]
    finite = x[:, 1][np.isfinite(x[:, 1])]
    edges = np.linspace(finite.min(), finite.max(), 9)
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 3 * 8
    for k in range(3):
        column = x[(y == k) & np.isfinite(x[:, 1]), 1]
        expected, _ = np.histogram(column, bins=edges)
        assert heights[8 * k:8 * (k + 1)] == expected.tolist()
    assert sum(heights) == 199  # every finite value counted once
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]


def test_class_histograms_by_feature_name():
    fig = plot_class_histograms([[0.0, 1.0], [1.0, 5.0]], ["M", "B"], feature="radius",
                                feature_names=["radius", "texture"], bins=2)
    assert fig.axes[0].get_xlabel() == "radius"
    # Classes in sorted order: B (value 1.0, upper bin) then M (value 0.0, lower bin).
    assert [p.get_height() for p in fig.axes[0].patches] == [0.0, 1.0, 1.0, 0.0]
    with pytest.raises(KeyError, match="no feature 'area'"):
        plot_class_histograms([[0.0]], [0], feature="area", feature_names=["radius"])


def test_scatter_points_per_class(tmp_path):
    x = np.array([[0.0, 1.0, 9.0], [2.0, 3.0, 9.0], [4.0, 5.0, 9.0], [6.0, 7.0, 9.0]])
    y = np.array([1, 0, 1, 0])
    path = tmp_path / "scatter.png"
    fig = plot_scatter(x, y, features=(2, 0), class_names={0: "benign", 1: "malignant"},
                       save=path)
    ax = fig.axes[0]
    assert [c.get_offsets().tolist() for c in ax.collections] == [
        [[9.0, 2.0], [9.0, 6.0]], [[9.0, 0.0], [9.0, 4.0]]]
    assert [c.get_label() for c in ax.collections] == ["benign", "malignant"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("feature 2", "feature 0")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pair_plot_grid(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 2, 30)
    path = tmp_path / "pairs.svg"
    fig = plot_pairs(x, y, features=[3, 1], feature_names=list("abcd"), bins=5, save=path)
    axes = np.array(fig.axes[:4]).reshape(2, 2)
    # Off the diagonal: column feature on x, row feature on y.
    offsets = np.concatenate([c.get_offsets() for c in axes[0][1].collections])
    expected = np.concatenate([x[y == k][:, [1, 3]] for k in (0, 1)])
    np.testing.assert_array_equal(offsets, expected)
    # On the diagonal: the class histograms of that feature.
    assert sum(p.get_height() for p in axes[1][1].patches) == 30
    assert axes[1][0].get_xlabel() == "d" and axes[1][0].get_ylabel() == "b"
    assert path.read_text().lstrip().startswith("<?xml")


def test_confusion_matrix_from_labels_and_from_matrix():
    y_true = [0, 0, 1, 2, 2, 2, 1]
    y_pred = [0, 1, 1, 2, 0, 2, 1]
    fig = plot_confusion_matrix(fusion.Tensor(y_true), np.array(y_pred),
                                class_names=["x", "y", "z"])
    ax = fig.axes[0]
    # Counted by hand: row = true class, column = predicted class.
    expected = [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert ax.images[0].get_array().tolist() == expected
    assert [t.get_text() for t in ax.texts] == [str(v) for row in expected for v in row]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    normalized = plot_confusion_matrix(np.array(expected), normalize=True).axes[0]
    np.testing.assert_allclose(normalized.images[0].get_array(),
                               [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [1 / 3, 0.0, 2 / 3]])
    assert normalized.texts[-1].get_text() == "0.67"
    with pytest.raises(ValueError, match="must be square"):
        plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="3 true labels for 2 predictions"):
        plot_confusion_matrix([0, 1, 1], [0, 1])


def test_importing_fusion_viz_does_not_import_matplotlib():
    import subprocess
    import sys

    code = ("import sys, fusion, fusion.viz, fusion.viz.plots; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_save_run_figures_writes_what_it_is_given(tmp_path):
    import shutil

    from fusion import nn
    from fusion.viz.plots import save_run_figures

    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 6)) * np.array([1.0, 5.0, 0.1, 3.0, 0.2, 4.0])
    y = rng.integers(0, 3, 40)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    paths = save_run_figures(tmp_path / "run", history={"loss": [1.0, 0.5]}, y_true=y,
                             y_pred=np.roll(y, 1), x=x, y=y, features=[1, 5], model=model,
                             input_shape=(1, 6))
    names = [os.path.basename(p) for p in paths]
    expected = ["learning_curves.png", "confusion_matrix.png", "class_histograms.png",
                "scatter.png", "pairs.png", "architecture.gv"]
    if shutil.which("dot"):
        expected.append("architecture.svg")
    assert names == expected
    for path in paths:
        if path.endswith(".png"):
            assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "out (1, 3)" in open(paths[5]).read()
    assert plt.get_fignums() == []  # every figure closed
    only_data = save_run_figures(tmp_path / "svg", x=x, y=y, features=[0, 2], fmt="svg")
    assert [os.path.basename(p) for p in only_data] == [
        "class_histograms.svg", "scatter.svg", "pairs.svg"]


def test_save_run_figures_picks_the_features_that_separate_the_classes(tmp_path, monkeypatch):
    from fusion.viz import plots

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 7)) * np.array([1.0, 50.0, 0.1, 3.0, 0.2, 4.0, 1.0])
    x[:, 2] += y * 1.0  # tiny scale, but 10 standard deviations between classes
    x[:, 4] += y * 0.2  # 1 standard deviation
    x[:, 3] += y * 0.3  # 0.1 standard deviation
    x[:, 0] = np.arange(300)  # an id: every value different
    x[:, 6] = 7.0  # constant
    drawn = {}
    monkeypatch.setattr(plots, "plot_pairs", lambda data, y, chosen, **kw: drawn.setdefault(
        "pairs", chosen) and plt.figure())
    progress = []
    plots.save_run_figures(tmp_path, x=x, y=y, progress=progress.append)
    # Ranked by the F statistic of a one-way ANOVA, which numpy computes here independently.
    def anova(column):
        groups = [column[y == k] for k in range(3)]
        mean = column.mean()
        between = sum(len(g) * (g.mean() - mean) ** 2 for g in groups) / 2
        within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (len(column) - 3)
        return between / within
    expected = sorted([1, 2, 3, 4, 5], key=lambda j: -anova(x[:, j]))[:4]
    assert drawn["pairs"] == expected and expected[:2] == [2, 4]
    assert 0 not in drawn["pairs"] and 6 not in drawn["pairs"]
    assert [os.path.basename(p) for p in progress] == [
        "class_histograms.png", "scatter.png", "pairs.png"]


def test_feature_choice_skips_ids_and_constants_without_labels():
    from fusion.viz.features import informative_features, is_id_column

    x = np.column_stack([np.arange(50.0), np.full(50, 2.0), np.arange(50.0) % 5,
                         np.linspace(0, 1, 50)])
    assert informative_features(x) == [2, 3]
    assert is_id_column(np.array([3.0, 1.0, 2.0]), name="ID")
    assert not is_id_column(np.linspace(0, 1, 50))  # all different, but not integers


def test_pictures_are_sharp_titled_and_mark_the_kept_epoch(tmp_path):
    from PIL import Image

    history = {"epoch": [1, 2, 3, 4], "loss": [1.0, 0.6, 0.4, 0.3],
               "val_loss": [1.1, 0.7, 0.65, 0.8], "accuracy": [0.5, 0.7, 0.8, 0.9],
               "val_accuracy": [0.5, 0.6, 0.75, 0.7]}
    fig = plot_learning_curves(history, best_epoch=3, save=tmp_path / "curves.png")
    for panel in fig.axes:
        kept = [line for line in panel.lines if line.get_label() == "kept: epoch 3"]
        assert len(kept) == 1 and list(kept[0].get_xdata()) == [3, 3]
        points = [line for line in panel.lines if line.get_marker() == "o"]
        assert [list(p.get_xydata()[0]) for p in points] == [
            [3, {"loss": 0.65, "accuracy": 0.75}[panel.get_title()]]]
    dpi = Image.open(tmp_path / "curves.png").info["dpi"]
    assert round(dpi[0]) >= 150
    fig = plot_confusion_matrix([0, 1, 1, 1], [0, 1, 0, 1], save=tmp_path / "cm.png")
    assert fig.axes[0].get_title().splitlines() == ["confusion matrix",
                                                    "4 samples, accuracy 75.0%"]
    assert round(Image.open(tmp_path / "cm.png").info["dpi"][0]) >= 150
    plt.close("all")


def test_digits_example_writes_its_pictures_with_plots(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from fusion.examples import digits

    assert digits.main(["--epochs", "1", "--patience", "0", "--quiet", "--plots",
                        "--hidden", "16", "--out", str(tmp_path)]) == 0
    pictures = sorted(p.name for p in (tmp_path / "plots").iterdir())
    # the learning curves are drawn once, beside the model, not again among the plots
    expected = ["architecture.gv", "class_histograms.png", "confusion_matrix.png",
                "pairs.png", "scatter.png"]
    assert [p for p in pictures if p != "architecture.svg"] == expected
    assert (tmp_path / "learning_curves.png").exists()
    assert "in_features=64, out_features=16" in (tmp_path / "plots" / "architecture.gv").read_text()


# The checkout under test, first on the path of commands run in another folder.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mlp_app_train_writes_its_pictures_with_plots(tmp_path):
    import subprocess
    import sys

    def mlp(*args):
        result = subprocess.run([sys.executable, "-m", "fusion.examples.mlp", *args],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": ROOT})
        assert result.returncode == 0, result.stderr
        return result.stdout

    pytest.importorskip("sklearn")
    mlp("dataset", "data.csv")
    mlp("split", "data.csv", "--seed", "1")
    out = mlp("train", "--epochs", "2", "--layer", "8", "8", "--plots", "pics")
    pictures = sorted(p.name for p in (tmp_path / "pics").iterdir())
    assert [p for p in pictures if p != "architecture.svg"] == [
        "architecture.gv", "class_histograms.png", "confusion_matrix.png",
        "pairs.png", "scatter.png"]  # the learning curves: once, in learning_curves.png
    assert (tmp_path / "learning_curves.png").exists()
    assert "pictures written in pics" in out
    assert "in_features=30, out_features=8" in (tmp_path / "pics" / "architecture.gv").read_text()
