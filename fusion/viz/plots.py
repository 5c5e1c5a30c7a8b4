"""Pictures of data and training runs with matplotlib (the ``plot`` extra).

matplotlib is imported inside the functions, so that ``import fusion.viz`` stays light. Every
function follows the same conventions: ``ax=None`` draws on a new figure (or pass axes to draw
on yours), the figure is returned, and ``save="name.png"`` (or ``.svg``, ``.pdf``) writes it.
Tensors, numpy arrays and lists are all accepted where data is expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PathLike = str | os.PathLike
#: The resolution of written pictures: sharp on high-density screens and in print.
DPI = 150


# --- shared helpers --------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'fusion[plot]'") from error
    return plt


def _finish(fig: Figure, save: PathLike | None) -> Figure:
    if save is not None:
        fig.savefig(save, dpi=DPI, bbox_inches="tight")
    return fig


def _array(data, name: str) -> np.ndarray:
    array = np.asarray(data)
    if array.dtype == object:
        raise TypeError(f"{name} must be numbers, not {type(data).__name__} of objects")
    return array


def _features(x, name: str = "x") -> np.ndarray:
    """(N, F) float array from a Tensor, array or list (1-D data is one feature)."""
    array = _array(x, name).astype(np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be (samples, features), not shape {array.shape}")
    return array


def _labels(y, n: int) -> np.ndarray:
    labels = _array(y, "y").reshape(-1)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} samples")
    return labels


def _feature_index(feature: int | str, names: Sequence[str] | None, count: int) -> int:
    if isinstance(feature, str):
        if names is None or feature not in names:
            raise KeyError(f"no feature {feature!r}; the feature names are {names}")
        return list(names).index(feature)
    if not -count <= feature < count:
        raise IndexError(f"feature {feature} is out of range for {count} features")
    return feature % count


def _feature_name(index: int, names: Sequence[str] | None) -> str:
    return str(names[index]) if names is not None else f"feature {index}"


def _class_name(label, class_names: Sequence[str] | Mapping | None) -> str:
    if class_names is None:
        return str(label)
    if isinstance(class_names, Mapping):
        return str(class_names.get(label, label))
    return str(class_names[int(label)])


# --- learning curves -------------------------------------------------------------------
def _history_dict(history: Any) -> dict[str, list[float]]:
    """The per-epoch lists of a History-like object or mapping: ``{"loss": [...], ...}``.

    An ``epoch`` list (``History.epoch``, or the key of ``History.to_dict()``) is kept under
    ``"epoch"``: it gives the x values.
    """
    if isinstance(history, Mapping):
        source = dict(history)
    elif isinstance(getattr(history, "history", None), Mapping):
        source = dict(history.history)
        if isinstance(getattr(history, "epoch", None), Sequence):
            source.setdefault("epoch", history.epoch)
    elif callable(getattr(history, "to_dict", None)):
        source = history.to_dict()
    else:
        source = {k: v for k, v in vars(history).items() if not k.startswith("_")}
    out = {}
    for key, values in source.items():
        if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
            continue
        array = np.asarray(values, dtype=object)
        if array.ndim == 1 and all(isinstance(v, int | float | np.number) or v is None
                                   for v in array):
            out[str(key)] = [np.nan if v is None else float(v) for v in array]
    return out


# Keys of a history that are not curves to plot by default.
_NOT_CURVES = ("epoch", "lr")


def _runs(histories, labels: Sequence[str] | None) -> list[tuple[str, dict[str, list[float]]]]:
    if isinstance(histories, Mapping) and all(
        not isinstance(v, Sequence | np.ndarray) for v in histories.values()
    ):
        runs = [(str(name), _history_dict(h)) for name, h in histories.items()]
    elif isinstance(histories, Sequence) and not isinstance(histories, str):
        runs = [(f"run {i + 1}", _history_dict(h)) for i, h in enumerate(histories)]
    else:
        runs = [("", _history_dict(histories))]
    if labels is not None:
        if len(labels) != len(runs):
            raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
        runs = [(str(label), h) for label, (_, h) in zip(labels, runs, strict=True)]
    return runs


def plot_learning_curves(histories, metrics: Sequence[str] | None = None, *,
                         labels: Sequence[str] | None = None,
                         ax: Axes | Sequence[Axes] | None = None,
                         best_epoch: int | None = None, title: str | None = None,
                         save: PathLike | None = None) -> Figure:
    """Loss and metrics per epoch, training (solid) and validation (dashed), one panel each.

    ``histories`` is one training history (a ``History`` or a mapping such as
    ``{"loss": [...], "val_loss": [...], "accuracy": [...]}``), a list of them, or a mapping of
    run names to them: each run gets its own colour on the same panels. ``metrics`` names the
    panels (default: every key without ``val_`` found in a run, loss first, except the
    learning rate ``lr``, which can be asked for). The x axis is the epoch number.
    ``best_epoch`` marks the epoch whose weights were kept (early stopping's best) with a
    dotted line and a point on each validation curve; ``title`` heads the figure.

    >>> fig = plot_learning_curves({"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.6]})
    >>> fig.axes[0].lines[0].get_ydata().tolist()
    [0.9, 0.5, 0.4]
    """
    runs = _runs(histories, labels)
    if metrics is None:
        found = [k for _, h in runs for k in h
                 if not k.startswith("val_") and k not in _NOT_CURVES]
        found += [k[4:] for _, h in runs for k in h if k.startswith("val_")]
        metrics = sorted(dict.fromkeys(found), key=lambda k: (k != "loss", found.index(k)))
    metrics = list(metrics)
    if not metrics:
        raise ValueError("no per-epoch values to plot in the histories")
    if ax is None:
        plt = _pyplot()
        fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
        axes = list(axes[0])
    else:
        axes = [ax] if not isinstance(ax, Sequence | np.ndarray) else list(np.ravel(ax))
        if len(axes) != len(metrics):
            raise ValueError(f"{len(axes)} axes for {len(metrics)} metrics {metrics}")
        fig = axes[0].figure
    for panel, metric in zip(axes, metrics, strict=True):
        for i, (run, history) in enumerate(runs):
            colour = f"C{i % 10}"
            for key, style, kind in ((metric, "-", "train"), (f"val_{metric}", "--", "validation")):
                if key not in history:
                    continue
                values = history[key]
                epochs = history.get("epoch", [])
                if len(epochs) != len(values):
                    epochs = np.arange(1, len(values) + 1)
                name = f"{run} {kind}" if run else kind
                panel.plot(epochs, values, style, color=colour, label=name)
        if best_epoch is not None:
            _mark_kept_epoch(panel, runs, metric, best_epoch)
        panel.set_xlabel("epoch")
        panel.set_ylabel(metric)
        panel.set_title(metric)
        panel.grid(True, alpha=0.3)
        if panel.lines:
            panel.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, save)


def _mark_kept_epoch(panel: Axes, runs, metric: str, epoch: int) -> None:
    panel.axvline(epoch, color="grey", linestyle=":", linewidth=1.2,
                  label=f"kept: epoch {epoch}")
    for i, (_, history) in enumerate(runs):
        key = f"val_{metric}" if f"val_{metric}" in history else metric
        epochs = list(history.get("epoch", [])) or list(range(1, len(history.get(key, [])) + 1))
        if key in history and epoch in epochs:
            value = history[key][epochs.index(epoch)]
            panel.plot([epoch], [value], "o", color=f"C{i % 10}", markersize=6,
                       markeredgecolor="black")


# --- data ------------------------------------------------------------------------------
def _class_histograms(panel: Axes, column: np.ndarray, labels: np.ndarray, bins,
                      class_names) -> None:
    finite = column[np.isfinite(column)]
    edges = np.histogram_bin_edges(finite if finite.size else [0.0, 1.0], bins=bins)
    for i, label in enumerate(np.unique(labels)):
        values = column[(labels == label) & np.isfinite(column)]
        panel.hist(values, bins=edges, alpha=0.5, color=f"C{i % 10}",
                   label=_class_name(label, class_names))


def plot_class_histograms(x, y, feature: int | str = 0, *, bins: int | Sequence[float] = 20,
                          feature_names: Sequence[str] | None = None,
                          class_names: Sequence[str] | Mapping | None = None,
                          ax: Axes | None = None, save: PathLike | None = None) -> Figure:
    """Histograms of one feature, one per class, overlaid on shared bins (NaNs left out).

    >>> fig = plot_class_histograms([[1.0], [2.0], [2.5]], [0, 1, 1], bins=2)
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [1.0, 0.0, 0.0, 2.0]
    """
    data = _features(x)
    labels = _labels(y, len(data))
    j = _feature_index(feature, feature_names, data.shape[1])
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=(5.5, 3.8))
    else:
        fig = ax.figure
    _class_histograms(ax, data[:, j], labels, bins, class_names)
    ax.set_xlabel(_feature_name(j, feature_names))
    ax.set_ylabel("count")
    ax.legend(fontsize="small")
    return _finish(fig, save)


def _class_scatter(panel: Axes, xs: np.ndarray, ys: np.ndarray, labels: np.ndarray,
                   class_names, size: float) -> None:
    for i, label in enumerate(np.unique(labels)):
        chosen = labels == label
        panel.scatter(xs[chosen], ys[chosen], s=size, alpha=0.7, color=f"C{i % 10}",
                      label=_class_name(label, class_names))


def plot_scatter(x, y, features: tuple[int | str, int | str] = (0, 1), *,
                 feature_names: Sequence[str] | None = None,
                 class_names: Sequence[str] | Mapping | None = None,
                 ax: Axes | None = None, save: PathLike | None = None) -> Figure:
    """Two features against each other, one colour per class.

    >>> fig = plot_scatter([[0.0, 1.0], [2.0, 3.0]], [0, 1])
    >>> fig.axes[0].collections[1].get_offsets().tolist()
    [[2.0, 3.0]]
    """
    data = _features(x)
    labels = _labels(y, len(data))
    i, j = (_feature_index(f, feature_names, data.shape[1]) for f in features)
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=(5, 4.2))
    else:
        fig = ax.figure
    _class_scatter(ax, data[:, i], data[:, j], labels, class_names, size=14)
    ax.set_xlabel(_feature_name(i, feature_names))
    ax.set_ylabel(_feature_name(j, feature_names))
    ax.legend(fontsize="small")
    return _finish(fig, save)


def plot_pairs(x, y, features: Sequence[int | str] | None = None, *, bins: int = 20,
               feature_names: Sequence[str] | None = None,
               class_names: Sequence[str] | Mapping | None = None,
               save: PathLike | None = None) -> Figure:
    """A grid of every pair of ``features``: scatter plots off the diagonal, class histograms on it.

    Panel ``[r][c]`` plots feature ``c`` (x axis) against feature ``r`` (y axis). The grid
    needs a figure of its own, so there is no ``ax`` argument.

    >>> fig = plot_pairs([[0.0, 1.0], [2.0, 3.0], [1.0, 1.0]], [0, 1, 1])
    >>> len(fig.axes)
    4
    """
    data = _features(x)
    labels = _labels(y, len(data))
    chosen = range(data.shape[1]) if features is None else features
    columns = [_feature_index(f, feature_names, data.shape[1]) for f in chosen]
    k = len(columns)
    if k == 0:
        raise ValueError("plot_pairs needs at least one feature")
    fig, axes = _pyplot().subplots(k, k, figsize=(2.4 * k + 1, 2.4 * k), squeeze=False)
    for r, row in enumerate(columns):
        for c, col in enumerate(columns):
            panel = axes[r][c]
            if r == c:
                _class_histograms(panel, data[:, col], labels, bins, class_names)
            else:
                _class_scatter(panel, data[:, col], data[:, row], labels, class_names, size=6)
            if r == k - 1:
                panel.set_xlabel(_feature_name(col, feature_names))
            if c == 0:
                panel.set_ylabel(_feature_name(row, feature_names))
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", fontsize="small")
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    return _finish(fig, save)


# --- evaluation ------------------------------------------------------------------------
def _confusion_matrix(y_true, y_pred, num_classes: int | None) -> np.ndarray:
    true = _array(y_true, "y_true").reshape(-1).astype(np.int64)
    pred = _array(y_pred, "y_pred").reshape(-1).astype(np.int64)
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} true labels for {len(pred)} predictions")
    k = num_classes or int(max(true.max(initial=-1), pred.max(initial=-1)) + 1)
    # Counting pairs (true, predicted) is counting the single index true * k + predicted.
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def plot_confusion_matrix(y_true, y_pred=None, *, class_names: Sequence[str] | None = None,
                          normalize: bool = False, cmap: str = "Blues",
                          title: str | None = "confusion matrix",
                          ax: Axes | None = None, save: PathLike | None = None) -> Figure:
    """A heat map of the confusion matrix, rows the true class and columns the predicted one.

    Pass integer labels ``y_true`` and ``y_pred``, or one square matrix of counts as
    ``y_true``. ``normalize=True`` divides each row by its total (the recall of each class
    is then on the diagonal). Each cell is annotated with its value; ``title`` heads the plot
    (with the number of samples and the accuracy added).

    >>> fig = plot_confusion_matrix([0, 1, 1, 1], [0, 1, 0, 1])
    >>> fig.axes[0].images[0].get_array().tolist()
    [[1, 0], [1, 2]]
    """
    if y_pred is None:
        matrix = _array(y_true, "matrix")
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"a confusion matrix must be square, not shape {matrix.shape}")
    else:
        matrix = _confusion_matrix(y_true, y_pred, len(class_names) if class_names else None)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = matrix / np.where(totals == 0, 1, totals)
    k = matrix.shape[0]
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=(1.0 + 0.6 * max(k, 4), 0.6 * max(k, 4)))
    else:
        fig = ax.figure
    image = ax.imshow(matrix, cmap=cmap, vmin=0)
    fig.colorbar(image, ax=ax)
    names = [str(n) for n in class_names] if class_names else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        total = matrix.sum()
        if not normalize and total:
            title = (f"{title}\n{int(total)} samples, accuracy "
                     f"{np.trace(matrix) / total:.1%}")
        elif normalize:
            title = f"{title} (each row sums to 1)"
        ax.set_title(title)
    # Dark cells get white text, light cells black, so every number stays legible.
    threshold = (matrix.max() + matrix.min()) / 2 if matrix.size else 0
    for r in range(k):
        for c in range(k):
            text = f"{matrix[r, c]:.2f}" if normalize else f"{int(matrix[r, c])}"
            ax.text(c, r, text, ha="center", va="center", fontsize="small",
                    color="white" if matrix[r, c] > threshold else "black")
    return _finish(fig, save)


# --- all of them at once ---------------------------------------------------------------
def save_run_figures(folder: PathLike, *, history: Any = None, y_true=None, y_pred=None,
                     class_names: Sequence[str] | None = None, x=None, y=None,
                     feature_names: Sequence[str] | None = None,
                     features: Sequence[int | str] | None = None, model: Any = None,
                     input_shape: Sequence[int] | None = None, fmt: str = "png",
                     best_epoch: int | None = None,
                     progress: Callable[[str], None] | None = None) -> list[str]:
    """Write the pictures of a run into ``folder``; returns the paths written.

    Each picture is drawn from what is given: ``history`` gives ``learning_curves``,
    (with ``best_epoch`` marked), ``y_true`` and ``y_pred`` the ``confusion_matrix``, ``x``
    and ``y`` (raw features and labels) the ``class_histograms`` of the first of ``features``,
    the ``scatter`` of the first two and the ``pairs`` of up to four (default: the four that
    separate the classes best, ids and constant columns left out: see
    :func:`fusion.viz.features.informative_features`), and ``model`` its ``architecture``
    (``.gv`` DOT source, and ``.svg`` where graphviz's ``dot`` is installed; ``input_shape``
    adds the shapes). Figures are closed once written; ``progress(path)`` is called after each.

    >>> save_run_figures("out", history=history, y_true=y_test, y_pred=predicted,
    ...                  x=X, y=y, model=model, input_shape=(1, 64))  # doctest: +SKIP
    ['out/learning_curves.png', 'out/confusion_matrix.png', ...]
    """
    import shutil
    from pathlib import Path

    plt = _pyplot()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def done(path) -> None:
        written.append(str(path))
        if progress is not None:
            progress(str(path))

    def keep(fig: Figure, name: str) -> None:
        path = out / f"{name}.{fmt}"
        _finish(fig, path)
        plt.close(fig)
        done(path)

    if history is not None:
        keep(plot_learning_curves(history, best_epoch=best_epoch), "learning_curves")
    if y_true is not None and y_pred is not None:
        keep(plot_confusion_matrix(y_true, y_pred, class_names=class_names), "confusion_matrix")
    if x is not None and y is not None:
        data = _features(x)
        if features is None:
            from .features import informative_features

            features = informative_features(data, y, 4, feature_names)
        chosen = list(features)
        if not chosen:
            raise ValueError("no feature to plot: every column is constant or an id")
        named = {"feature_names": feature_names, "class_names": class_names}
        keep(plot_class_histograms(data, y, chosen[0], **named), "class_histograms")
        if len(chosen) > 1:
            keep(plot_scatter(data, y, (chosen[0], chosen[1]), **named), "scatter")
            keep(plot_pairs(data, y, chosen[:4], **named), "pairs")
    if model is not None:
        from .architecture import draw_architecture

        dot = draw_architecture(model, input_shape)
        if shutil.which("dot"):
            # render() writes its DOT input beside the picture, and cleanup removes it:
            # so render first, then write the source for good.
            dot.render(outfile=out / "architecture.svg", format="svg", cleanup=True)
        source = out / "architecture.gv"
        source.write_text(dot.source)
        done(source)
        if shutil.which("dot"):
            done(out / "architecture.svg")
    return written
