"""A training loop for Fusion models: fit, evaluate, predict, History and callbacks.

``fit`` runs the loop a PyTorch user writes by hand (zero the gradients, forward, loss,
backward, step), records per-epoch figures in a :class:`History`, calls callbacks and shows
progress: on a terminal, a tqdm bar while an epoch runs, which stays as the epoch's summary
(its figures and time) when it ends, as Keras's does; elsewhere (a file, a pipe, CI logs) one
summary line per epoch; nothing with ``verbose=False``. An epoch's time leaves out the
seconds a backend spent compiling kernels (a backend with a ``compile_seconds`` attribute,
such as numba, reports them), which are shown beside it.

A model is anything callable with ``parameters()`` and, if it has them, ``train()``/``eval()``
and ``state_dict()``/``load_state_dict()`` (as a :class:`fusion.nn.Module`). An optimizer has
``zero_grad()`` and ``step()``; a scheduler, ``step()``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from .core.backend import Backend
from .core.grad_mode import no_grad
from .core.tensor import Tensor
from .files import atomic_write, parse_json, read_regular_file
from .metrics import get_metric


# --- History ----------------------------------------------------------------------------------
class History:
    """Per-epoch figures of a run: ``history["loss"]`` is the list of training losses, one per
    epoch, ``history.epoch`` the epoch numbers (from 1). Keys: ``loss``, each metric, and, with a
    validation loader, ``val_loss`` and ``val_<metric>``; ``lr`` when a scheduler is used.

    >>> h = History()
    >>> h.append({"loss": 0.9, "val_loss": 1.0}); h.append({"loss": 0.5, "val_loss": 0.7})
    >>> h["loss"], h.best("val_loss")
    ([0.9, 0.5], (2, 0.7))
    >>> print(h.to_csv(), end="")
    epoch,loss,val_loss
    1,0.9,1.0
    2,0.5,0.7
    """

    def __init__(self) -> None:
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def append(self, logs: Mapping[str, float], epoch: int | None = None) -> None:
        """Record one epoch's figures; a key missing on some epochs reads as nan there."""
        epoch = len(self.epoch) + 1 if epoch is None else int(epoch)
        for key in logs:
            if key not in self.history:
                self.history[key] = [math.nan] * len(self.epoch)
        self.epoch.append(epoch)
        for key, values in self.history.items():
            values.append(float(logs.get(key, math.nan)))

    def __getitem__(self, key: str) -> list[float]:
        try:
            return self.history[key]
        except KeyError:
            raise KeyError(f"no {key!r} in this history; it has {self.keys()}") from None

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def keys(self) -> list[str]:
        return list(self.history)

    def best(self, monitor: str = "val_loss", mode: str = "auto") -> tuple[int, float]:
        """``(epoch, value)`` of the best epoch for ``monitor`` (max for accuracy-like names)."""
        values = np.asarray(self[monitor], dtype=float)
        if np.all(np.isnan(values)):
            raise ValueError(f"{monitor!r} has no value in this history")
        sign = 1.0 if _resolve_mode(monitor, mode) == "min" else -1.0
        i = int(np.nanargmin(sign * values))
        return self.epoch[i], float(values[i])

    def to_dict(self) -> dict[str, list]:
        return {"epoch": list(self.epoch), **{k: list(v) for k, v in self.history.items()}}

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The history as CSV (a column per key, a row per epoch); written to ``path`` if
        given. Returns the text."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = self.to_dict()
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
        text = buffer.getvalue()
        if path is not None:
            with atomic_write(path, "w", newline="", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The history as JSON (``{"epoch": [...], "loss": [...], ...}``; nan as null);
        written to ``path`` if given. Returns the text."""
        data = {k: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
                for k, values in self.to_dict().items()}
        text = json.dumps(data, indent=1)
        if path is not None:
            with atomic_write(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence]) -> History:
        """A history from :meth:`to_dict`'s layout (e.g. a parsed :meth:`to_json` file).

        Raises ``ValueError`` saying what is wrong when ``data`` is not of that layout: a
        mapping of names to equally long lists of numbers (``None`` for nan)."""
        _check_layout(data)
        history = cls()
        columns = {k: list(v) for k, v in data.items() if k != "epoch"}
        epochs = list(data.get("epoch", range(1, 1 + max(map(len, columns.values()), default=0))))
        history.epoch = [int(e) for e in epochs]
        history.history = {k: [math.nan if v is None else float(v) for v in values]
                           for k, values in columns.items()}
        return history

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> History:
        """A history from a file written by :meth:`to_json`. Only a regular file is read (a
        FIFO or a device is refused, not waited on); ``ValueError`` names the file when its
        content is not a history."""
        raw = read_regular_file(path, limit=MAX_HISTORY_BYTES)
        try:
            return cls.from_dict(parse_json(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{os.fspath(path)}: is not a history ({exc})") from None

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={self.keys()})"


#: The largest history file :meth:`History.from_json` reads (a million epochs fit in less).
MAX_HISTORY_BYTES = 256 * 1024 * 1024


def _check_layout(data) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an object of columns, got {type(data).__name__}")
    lengths = set()
    for key, values in data.items():
        if not isinstance(key, str) or not isinstance(values, list | tuple | range):
            raise ValueError(f"column {key!r} is not a list of numbers")
        bad = [v for v in values if v is not None and (isinstance(v, bool)
                                                       or not isinstance(v, int | float))]
        if bad:
            raise ValueError(f"column {key!r} holds {bad[0]!r}, not a number")
        if key == "epoch" and None in values:
            raise ValueError("the epoch column has an empty entry")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ValueError(f"the columns have different lengths {sorted(lengths)}")


# --- callbacks ----------------------------------------------------------------------------------
class Callback:
    """Hooks into :func:`fit`. Override any of the methods; each receives the figures so far.

    Before training, ``fit`` sets ``model``, ``optimizer`` and ``history`` on the callback.
    Setting ``stop_training = True`` ends training after the current epoch. ``epoch`` and
    ``batch`` are indices from 0. Any object with some of these methods works as a callback.

    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         print(f"{epoch}: {logs['loss']:.3f}")
    """

    model = None
    optimizer = None
    history: History | None = None
    stop_training = False

    def set_context(self, model, optimizer, history: History) -> None:
        self.model, self.optimizer, self.history = model, optimizer, history

    def on_train_begin(self, logs: dict) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, logs: dict) -> None:
        pass


def _resolve_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', not {mode!r}")
    if mode != "auto":
        return mode
    higher_is_better = ("acc", "f1", "precision", "recall", "auc")
    return "max" if any(word in monitor for word in higher_is_better) else "min"


def _copy_state(model) -> dict[str, np.ndarray]:
    """A snapshot of the weights that later steps cannot change."""
    # Tensor.numpy() is a copy already
    return {name: value.numpy() if isinstance(value, Tensor) else np.array(value, copy=True)
            for name, value in model.state_dict().items()}


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row; with ``restore_best_weights`` the model ends with the weights of its best
    epoch.

    ``mode`` "auto" minimises losses and maximises names with acc, f1, precision, recall.
    After training, ``best_epoch`` (from 1), ``best`` and ``stopped_epoch`` (0 if it never
    stopped early) say what happened.

    >>> stopper = EarlyStopping(monitor="val_loss", patience=5)
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, not {patience}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = abs(min_delta)
        self.mode = _resolve_mode(monitor, mode)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs: dict) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict | None = None
        self.stop_training = False
        if self.restore_best_weights and not hasattr(self.model, "state_dict"):
            raise TypeError("EarlyStopping(restore_best_weights=True) needs a model with "
                            "state_dict() and load_state_dict()")

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which this run does not "
                           f"record (it has {sorted(logs)}); "
                           + ("pass val_loader= to fit" if self.monitor.startswith("val_")
                              else "pick one of those"))
        value = float(logs[self.monitor])
        if math.isnan(value):
            value = math.inf if self.mode == "min" else -math.inf
        if self.best_epoch == 0 or self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if self.restore_best_weights:
                self.best_weights = _copy_state(self.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch + 1
            self.stop_training = True

    def on_train_end(self, logs: dict) -> None:
        last = self.history.epoch[-1] if self.history is not None and len(self.history) else None
        if self.best_weights is not None and last != self.best_epoch:
            self.model.load_state_dict(self.best_weights)


# --- progress -----------------------------------------------------------------------------------
def _format_logs(logs: Mapping[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def _format_time(seconds: float, compiling: float) -> str:
    text = f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    if compiling >= 0.05:
        text += f" (+{compiling:.1f}s compiling kernels)"
    return text


def _compile_seconds(backend) -> float:
    """Seconds the backend has spent compiling so far (0 for one that does not compile)."""
    value = getattr(backend, "compile_seconds", 0.0) if backend is not None else 0.0
    return float(value) if isinstance(value, int | float) else 0.0


class _Progress:
    """A tqdm bar per epoch on a terminal, a line per epoch elsewhere, or nothing."""

    def __init__(self, verbose: bool | int, epochs: int):
        self.epochs = epochs
        self.width = len(str(epochs))
        self.bar = None
        self.tqdm = None
        if not verbose:
            self.mode = "silent"
            return
        self.mode = "lines"
        try:
            is_terminal = sys.stdout.isatty()
        except (AttributeError, ValueError):
            is_terminal = False
        if verbose is True or verbose == 1:
            if is_terminal:
                try:
                    from tqdm.auto import tqdm
                except ImportError:  # an optional extra: fall back to lines
                    tqdm = None
                if tqdm is not None:
                    self.mode, self.tqdm = "bar", tqdm

    def label(self, epoch: int) -> str:
        return f"epoch {epoch + 1:0{max(self.width, 2)}d}/{self.epochs}"

    def epoch_begin(self, epoch: int, batches: int | None) -> None:
        if self.mode == "bar":
            # the bar lives while the epoch runs and stays, with the epoch's figures, after
            self.bar = self.tqdm(total=batches, desc=self.label(epoch), file=sys.stdout,
                                 unit="batch", leave=True, dynamic_ncols=True)

    def batch_end(self, running_loss: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss: {running_loss:.4f}", refresh=False)
            self.bar.update(1)

    def epoch_end(self, epoch: int, logs: Mapping[str, float], seconds: float,
                  compiling: float) -> None:
        summary = f"{_format_logs(logs)} - {_format_time(seconds, compiling)}"
        if self.bar is not None:
            self.bar.set_postfix_str(summary, refresh=False)
            self.bar.close()
            self.bar = None
        elif self.mode != "silent":
            print(f"{self.label(epoch)} - {summary}", file=sys.stdout, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --- the loop -----------------------------------------------------------------------------------
def _split_batch(batch) -> tuple[tuple, object]:
    if isinstance(batch, tuple | list) and len(batch) >= 2:
        *inputs, target = batch
        return tuple(inputs), target
    raise TypeError(f"a batch must be (inputs..., target), got {type(batch).__name__}; "
                    "a DataLoader over TensorDataset(X, y) gives that")


def _model_backend(model) -> str | None:
    """The backend name of the model's first parameter (None for a model without parameters)."""
    parameters = getattr(model, "parameters", None)
    if parameters is None:
        return None
    for parameter in parameters():
        return parameter.backend
    return None


def _moved(inputs: tuple, target, backend: str | Backend | None) -> tuple[tuple, object]:
    """Batch tensors moved to the model's backend (a no-op when they are there already), so
    that a loader built under another default backend still feeds the model."""
    if backend is None:
        return inputs, target

    def move(value):
        return value.to(backend) if isinstance(value, Tensor) else value

    return tuple(move(x) for x in inputs), move(target)


def _as_array(value) -> np.ndarray:
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def _output_labels(output: np.ndarray) -> np.ndarray:
    """Class labels from a model's output: argmax of scores, or a probability above 0.5."""
    if output.ndim >= 2 and output.shape[-1] > 1:
        return output.argmax(axis=-1)
    flat = output.reshape(len(output)) if output.ndim else output.reshape(1)
    return (flat > 0.5).astype(np.int64) if flat.dtype.kind == "f" else flat


def _target_labels(target: np.ndarray) -> np.ndarray:
    if target.ndim >= 2 and target.shape[-1] > 1:  # one-hot or class probabilities
        return target.argmax(axis=-1)
    flat = target.reshape(len(target)) if target.ndim else target.reshape(1)
    return np.rint(flat).astype(np.int64) if flat.dtype.kind == "f" else flat


def _metric_functions(metrics) -> dict[str, Callable]:
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    if isinstance(metrics, Mapping):
        return {str(k): get_metric(v) for k, v in metrics.items()}
    functions = {}
    for metric in metrics:
        fn = get_metric(metric)
        functions[metric if isinstance(metric, str) else fn.__name__] = fn
    return functions


class _Tally:
    """Sums the loss weighted by batch size and keeps labels for the epoch's metrics."""

    def __init__(self, metrics: dict[str, Callable]):
        self.metrics = metrics
        self.loss_sum = 0.0
        self.count = 0
        self.predicted: list[np.ndarray] = []
        self.actual: list[np.ndarray] = []

    def add(self, loss: float | None, output, target) -> int:
        target_array = _as_array(target)
        size = len(target_array) if target_array.ndim else 1
        if loss is not None:
            self.loss_sum += loss * size
        self.count += size
        if self.metrics:
            self.predicted.append(_output_labels(_as_array(output)))
            self.actual.append(_target_labels(target_array))
        return size

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / self.count if self.count else math.nan

    def results(self, with_loss: bool) -> dict[str, float]:
        logs = {"loss": self.mean_loss} if with_loss else {}
        if self.metrics and self.count:
            predicted, actual = np.concatenate(self.predicted), np.concatenate(self.actual)
            for name, fn in self.metrics.items():
                logs[name] = float(fn(actual, predicted))
        return logs


def _call(callbacks: Sequence, hook: str, *args) -> None:
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(*args)


def _current_lr(optimizer) -> float | None:
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        return float(groups[0]["lr"])
    lr = getattr(optimizer, "lr", None)
    return float(lr) if isinstance(lr, int | float) else None


def _steps(model, loss_fn: Callable | None, optimizer, jit: bool) -> tuple[Callable, Callable]:
    """The training step and the evaluation step of :func:`fit`, through :func:`fusion.jit`
    when ``jit`` is set and the model and optimizer are Fusion's own (whose host values a
    replay recomputes)."""

    def train_step(inputs, target):
        optimizer.zero_grad()
        output = model(*inputs)
        loss = loss_fn(output, target)
        loss.backward()
        optimizer.step()
        return loss, output.detach() if isinstance(output, Tensor) else output

    def eval_step(inputs, target):
        output = model(*inputs)
        return output, loss_fn(output, target) if loss_fn is not None else None

    if jit:
        from .nn.module import Module
        from .optim.optimizer import Optimizer
        from .replay import jit as capture_step

        if isinstance(model, Module):
            eval_step = capture_step(eval_step)
            if isinstance(optimizer, Optimizer):
                train_step = capture_step(train_step)
    return train_step, eval_step


def fit(model, loss_fn: Callable, optimizer, train_loader: Iterable,
        val_loader: Iterable | None = None, epochs: int = 10,
        metrics: Sequence[str | Callable] | Mapping[str, Callable] | None = ("accuracy",),
        callbacks: Sequence = (), verbose: bool | int = True, scheduler=None,
        dashboard: bool | Mapping = False, jit: bool = True) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; returns the :class:`History`.

    Each batch is ``(inputs..., target)``, moved to the backend of the model's parameters if it
    is elsewhere; per batch: ``optimizer.zero_grad()``,
    ``loss_fn(model(*inputs), target).backward()``, ``optimizer.step()``. The epoch's loss is
    the mean over samples (``loss_fn`` should average over its batch); metrics (names from
    :data:`fusion.metrics.METRICS` or functions ``(y_true, y_pred) -> float``) are computed
    over the epoch's predicted labels: the argmax of the output, or, for one output per sample,
    whether it exceeds 0.5 (a probability). ``val_loader`` adds ``val_loss`` and
    ``val_<metric>``, evaluated in eval mode without gradients. ``scheduler.step()`` runs after
    every epoch. ``verbose``: True shows a tqdm bar per epoch on a terminal (kept as the epoch's
    summary) and a line per epoch otherwise, 2 always prints lines, False prints nothing. The
    time shown for an epoch leaves out kernel compilation (reported beside it).
    ``dashboard=True`` (or a dict of :class:`fusion.viz.dashboard.DashboardCallback`
    arguments) shows the run live in a browser.

    ``jit`` (default True): the training and evaluation steps run through :func:`fusion.jit`
    when the model is a :class:`fusion.nn.Module` and the optimizer a
    :class:`fusion.optim.Optimizer`: captured on their first calls, then replayed without the
    Python frontend, with the same results. ``jit=False`` runs every step in Python.

    >>> history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()),
    ...               train_loader, val_loader, epochs=20)  # doctest: +SKIP
    >>> history["val_accuracy"][-1]  # doctest: +SKIP
    0.97
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, not {epochs!r}")
    metric_functions = _metric_functions(metrics)
    callbacks = list(callbacks)
    if dashboard:
        from .viz.dashboard import DashboardCallback  # Bokeh is imported only when asked for

        callbacks.append(DashboardCallback(**(dashboard if isinstance(dashboard, Mapping)
                                              else {})))
    history = History()
    for callback in callbacks:
        if hasattr(callback, "set_context"):
            callback.set_context(model, optimizer, history)
    progress = _Progress(verbose, epochs)
    backend = _model_backend(model)
    train_step, eval_step = _steps(model, loss_fn, optimizer, jit)
    _call(callbacks, "on_train_begin", {})
    logs: dict[str, float] = {}
    try:
        for epoch in range(epochs):
            if hasattr(model, "train"):
                model.train()
            _call(callbacks, "on_epoch_begin", epoch, {})
            try:
                batches = len(train_loader)
            except TypeError:
                batches = None
            progress.epoch_begin(epoch, batches)
            started, compiled = time.perf_counter(), _compile_seconds(backend)
            tally = _Tally(metric_functions)
            for index, batch in enumerate(train_loader):
                inputs, target = _moved(*_split_batch(batch), backend)
                loss, output = train_step(inputs, target)
                value = float(loss.item())
                size = tally.add(value, output, target)
                progress.batch_end(tally.mean_loss)
                _call(callbacks, "on_batch_end", index,
                      {"loss": value, "size": size, "epoch": epoch})
            if tally.count == 0:
                raise ValueError("train_loader gave no batches (is drop_last dropping the only, "
                                 "short, batch?)")
            logs = tally.results(with_loss=True)
            if val_loader is not None:
                scores = _evaluate(model, val_loader, loss_fn, metric_functions, eval_step)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            if scheduler is not None:
                lr = _current_lr(optimizer)
                if lr is not None:
                    logs["lr"] = lr
                scheduler.step()
            history.append(logs, epoch + 1)
            compiling = _compile_seconds(backend) - compiled
            seconds = time.perf_counter() - started - compiling
            _call(callbacks, "on_epoch_end", epoch, logs)
            progress.epoch_end(epoch, logs, seconds, compiling)
            if any(getattr(cb, "stop_training", False) for cb in callbacks):
                break
    finally:
        progress.close()
    _call(callbacks, "on_train_end", logs)
    return history


def evaluate(model, loader: Iterable, loss_fn: Callable | None = None,
             metrics: Sequence[str | Callable] | Mapping[str, Callable] | None = ("accuracy",),
             ) -> dict[str, float]:
    """Mean loss (if ``loss_fn`` is given) and metrics of ``model`` over ``loader``, in eval
    mode and without gradients; the model's mode is restored afterwards.

    >>> evaluate(model, test_loader, nn.CrossEntropyLoss())  # doctest: +SKIP
    {'loss': 0.081, 'accuracy': 0.975}
    """
    return _evaluate(model, loader, loss_fn, _metric_functions(metrics),
                     _steps(model, loss_fn, None, False)[1])


def _evaluate(model, loader: Iterable, loss_fn: Callable | None, metric_functions,
              eval_step: Callable) -> dict[str, float]:
    tally = _Tally(metric_functions)
    backend = _model_backend(model)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            for batch in loader:
                inputs, target = _moved(*_split_batch(batch), backend)
                output, loss = eval_step(inputs, target)
                loss = float(loss.item()) if loss is not None else None
                tally.add(loss, output, target)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    if tally.count == 0:
        raise ValueError("evaluate: the loader gave no batches")
    return tally.results(with_loss=loss_fn is not None)


def predict(model, X, batch_size: int = 256, backend: str | Backend | None = None) -> Tensor:
    """The model's outputs for the rows of ``X`` (a Tensor or array), computed in batches in
    eval mode without gradients, joined into one Tensor. The rows go to ``backend``, by default
    the backend of the model's parameters.

    >>> scores = predict(model, X_test)  # doctest: +SKIP
    >>> labels = scores.argmax(-1)  # doctest: +SKIP
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
    if backend is None:
        backend = _model_backend(model)
    if isinstance(X, Tensor):
        rows, target = X.numpy(), backend if backend is not None else X.backend
    else:
        rows, target = np.asarray(X), backend
    if rows.ndim == 0 or len(rows) == 0:
        raise ValueError(f"predict needs at least one row, got shape {rows.shape}")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    parts, out_backend = [], None
    try:
        with no_grad():
            for start in range(0, len(rows), batch_size):
                chunk = Tensor(np.ascontiguousarray(rows[start:start + batch_size]),
                               backend=target)
                output = model(chunk)
                out_backend = output.backend
                parts.append(output.numpy())
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    # joined on the host: one copy, where cat of many tensors would pad each one
    return Tensor(np.concatenate(parts), backend=out_backend)


__all__ = ["Callback", "EarlyStopping", "History", "evaluate", "fit", "predict"]
