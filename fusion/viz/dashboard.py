"""A live training dashboard in the browser, built on Bokeh (the ``dashboard`` extra).

A :class:`Dashboard` runs a Bokeh server in a background thread (on 127.0.0.1 only unless told
otherwise) and serves one page. Training writes into it (:meth:`Dashboard.record_batch`,
:meth:`Dashboard.record_epoch`), each open page pulls what is new a few times a second, so the
curves grow while the model trains. The page shows:

- the status of the run (waiting, training, finished), the epoch, the batches seen, the time;
- the loss of every batch (faint) with its smoothed curve (an exponential moving average,
  corrected for its start as TensorBoard's), on a linear or log scale (a toggle), the loss per
  epoch (training and validation), and every metric per epoch (validation dashed);
- other runs to compare (:meth:`Dashboard.add_run`, ``fusion dashboard --history a.json
  b.json``), each in its own colour on the epoch panels;
- a table of the figures of each epoch, newest first, scrolling past a few rows;
- with a data set: its :func:`fusion.data.describe` table, a histogram per class of a chosen
  feature and a scatter plot of two chosen features coloured by class (at first the features
  that separate the classes best, ids and constant columns left out).

A panel with nothing to show yet is hidden. :meth:`Dashboard.wait_for_browser` blocks until a
page is open, so that a run can wait for its audience (``DashboardCallback(wait=True)``).

After training, :meth:`Dashboard.save_report` writes the same page, with the final data, as one
static HTML file that needs neither a server nor a network (BokehJS is inlined).

From a training loop, :class:`DashboardCallback` does all of this::

    fit(model, loss_fn, optimizer, train_loader, val_loader, epochs=20,
        callbacks=[DashboardCallback(port=5006, data=(X, y), report="run.html")])

Bokeh is imported only when a dashboard starts or a report is written.
"""

from __future__ import annotations

import errno
import html
import math
import os
import threading
import time
import webbrowser
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.csvfile import read_csv_columns
from ..data.describe import Description, describe
from .features import informative_features

# The names of the page's models, which tests and scripts can look up in the Bokeh document.
BATCHES = "batches"  # ColumnDataSource: step, epoch, loss
EPOCHS = "epochs"  # ColumnDataSource: epoch and one column per logged figure
STATUS = "status"  # Div: the state of the run
EPOCH_TABLE = "epoch_table"  # Div: the figures of each epoch
DESCRIBE = "describe"  # Div: the data set's describe table
HISTOGRAM = "histogram"  # ColumnDataSource: the bars of the class histograms
SCATTER = "scatter"  # ColumnDataSource: x, y, colour, label of the scatter plot
BATCH_FIGURE = "batch_figure"  # the batch loss, linear scale (BATCH_FIGURE + "_log": log)
SCALE_TOGGLE = "loss_scale"  # RadioButtonGroup: linear or log batch loss
LOSS_FIGURE = "loss_figure"  # loss per epoch
METRIC_FIGURE = "metric_figure"  # metrics per epoch
RUN_PREFIX = "run:"  # ColumnDataSource per compared run: "run:<name>"

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")
_MAX_SCATTER_POINTS = 5000  # a browser draws this many without lag
_MAX_DESCRIBE_COLUMNS = 40
_MAX_TABLE_ROWS = 500  # the newest epochs in the table; it scrolls past a few
SMOOTHING = 0.9  # weight of the past in the smoothed batch loss


class DashboardError(OSError):
    """The dashboard cannot serve (a port in use, an address not on this machine)."""


def _bokeh():
    try:
        import bokeh  # noqa: F401
    except ImportError:
        raise ImportError("the dashboard needs Bokeh, which is not installed: "
                          "pip install 'fusion[dashboard]'") from None


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


class _DataSet:
    """The features, labels and summary shown in the data section of the page."""

    def __init__(self, features: np.ndarray, labels: np.ndarray | None, names: list[str],
                 class_names: Mapping | None):
        self.features = features
        self.labels = labels
        self.names = names
        self.description: Description = describe(
            features[:, :_MAX_DESCRIBE_COLUMNS], names=names[:_MAX_DESCRIBE_COLUMNS])
        if labels is None:
            self.classes: list = []
        else:
            self.classes = sorted(set(labels.tolist()), key=lambda v: (str(type(v)), v))
        self.class_names = {c: str(class_names.get(c, c)) if class_names else str(c)
                            for c in self.classes}
        # One fixed sample of rows for the scatter plot, so that its picture is stable.
        rng = np.random.default_rng(0)
        count = len(features)
        self.sample = (np.sort(rng.choice(count, _MAX_SCATTER_POINTS, replace=False))
                       if count > _MAX_SCATTER_POINTS else np.arange(count))
        # The features shown first: those that separate the classes best (raw values).
        chosen = informative_features(features, labels, 2, names) if features.shape[1] else []
        self.shown = (chosen + [j for j in range(features.shape[1]) if j not in chosen])[:2]
        self.shown += self.shown[:1] * (2 - len(self.shown)) if self.shown else [0, 0]

    def histogram(self, feature: int, bins: int = 20) -> dict[str, list]:
        """Bars of the class histograms of one feature: left, right, top, colour, class."""
        column = self.features[:, feature]
        finite = np.isfinite(column)
        values = column[finite]
        edges = np.histogram_bin_edges(values if values.size else [0.0, 1.0], bins=bins)
        out: dict[str, list] = {"left": [], "right": [], "top": [], "color": [], "label": []}
        groups = [(None, finite)] if self.labels is None else [
            (c, finite & (self.labels == c)) for c in self.classes]
        for i, (label, chosen) in enumerate(groups):
            counts, _ = np.histogram(column[chosen], bins=edges)
            out["left"] += edges[:-1].tolist()
            out["right"] += edges[1:].tolist()
            out["top"] += counts.astype(float).tolist()
            out["color"] += [_PALETTE[i % len(_PALETTE)]] * len(counts)
            out["label"] += ["all" if label is None else self.class_names[label]] * len(counts)
        return out

    def scatter(self, fx: int, fy: int) -> dict[str, list]:
        rows = self.sample
        if self.labels is None:
            colours = [_PALETTE[0]] * len(rows)
            names = ["all"] * len(rows)
        else:
            index = {c: i for i, c in enumerate(self.classes)}
            colours = [_PALETTE[index[v] % len(_PALETTE)] for v in self.labels[rows].tolist()]
            names = [self.class_names[v] for v in self.labels[rows].tolist()]
        return {"x": self.features[rows, fx].tolist(), "y": self.features[rows, fy].tolist(),
                "color": colours, "label": names}


def _read_labelled_csv(path, label: int | str | None):
    """Numeric features, the class labels in column ``label`` (if given), feature names."""
    names, features, labels = read_csv_columns(path, label=label)
    return features, labels, names


class Dashboard:
    """A Bokeh page with live learning curves, served from a background thread.

    >>> board = Dashboard(port=0)  # doctest: +SKIP
    >>> board.start()  # doctest: +SKIP
    'http://127.0.0.1:40513/'
    >>> board.record_epoch(1, {"loss": 0.9, "val_loss": 1.1})  # doctest: +SKIP
    >>> board.stop()  # doctest: +SKIP
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 5006,
                 title: str = "Fusion training", update_ms: int = 250,
                 allow_origins: Sequence[str] | None = None):
        self.host = host
        self.port = port
        self.title = title
        self.update_ms = int(update_ms)
        self.allow_origins = list(allow_origins) if allow_origins else None
        self._lock = threading.Lock()
        self._batches: dict[str, list] = {"step": [], "epoch": [], "loss": [], "smooth": []}
        self._average = 0.0  # the moving average of the batch loss, before its correction
        self._runs: dict[str, dict[str, list]] = {}
        self._connected = threading.Event()
        self._epochs: list[dict[str, float]] = []
        self._state = "waiting"
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._data: _DataSet | None = None
        self._thread: threading.Thread | None = None
        self._loop = None
        self._server = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- what training writes --------------------------------------------------------------
    def set_data(self, data, labels=None, *, feature_names: Sequence[str] | None = None,
                 class_names: Sequence[str] | Mapping | None = None,
                 label_column: int | str | None = None) -> None:
        """The data set shown beside the curves: features (a Tensor, array, or a CSV path
        whose ``label_column`` holds the classes) and optional class labels."""
        if isinstance(data, str | os.PathLike):
            features, labels, names = _read_labelled_csv(data, label_column)
        else:
            features = np.asarray(data, dtype=np.float64)
            if features.ndim == 1:
                features = features[:, None]
            names = [str(n) for n in feature_names] if feature_names is not None else [
                str(i) for i in range(features.shape[1])]
        if feature_names is not None:
            names = [str(n) for n in feature_names]
        if features.ndim != 2 or len(names) != features.shape[1]:
            raise ValueError(f"{len(names)} feature names for data of shape {features.shape}")
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            if len(labels) != len(features):
                raise ValueError(f"{len(labels)} labels for {len(features)} rows")
        if class_names is not None and not isinstance(class_names, Mapping):
            class_names = dict(enumerate(class_names))
        dataset = _DataSet(features, labels, names, class_names)
        with self._lock:
            self._data = dataset

    def training_started(self) -> None:
        with self._lock:
            self._state = "training"
            self._started_at = time.monotonic()
            self._finished_at = None

    def record_batch(self, loss: float, epoch: int | None = None) -> None:
        """The loss of one training batch (steps are counted from 1)."""
        with self._lock:
            if self._state == "waiting":
                self._state, self._started_at = "training", time.monotonic()
            step = len(self._batches["step"]) + 1
            self._batches["step"].append(step)
            self._batches["epoch"].append(math.nan if epoch is None else float(epoch))
            self._batches["loss"].append(float(loss))
            if math.isfinite(loss):
                self._average = SMOOTHING * self._average + (1 - SMOOTHING) * float(loss)
            # divided by the weight the average has gathered, so the first steps are not pulled
            # towards 0 (the bias correction of Adam's moments and TensorBoard's smoothing)
            self._batches["smooth"].append(self._average / (1 - SMOOTHING ** step))

    def record_epoch(self, epoch: int, logs: Mapping[str, float]) -> None:
        """The figures of one finished epoch (numbered from 1): loss, metrics, val_*."""
        row = {"epoch": float(epoch)}
        row.update({str(k): float(v) for k, v in logs.items()
                    if isinstance(v, int | float | np.number)})
        with self._lock:
            if self._state == "waiting":
                self._state, self._started_at = "training", time.monotonic()
            self._epochs.append(row)

    def add_run(self, name: str, history: Any) -> None:
        """Another run to compare with this one: a :class:`fusion.train.History`, or a mapping
        of per-epoch lists (``{"loss": [...], "val_loss": [...], ...}``)."""
        from .plots import _history_dict

        columns = _history_dict(history)
        length = max((len(v) for k, v in columns.items() if k != "epoch"), default=0)
        if len(columns.get("epoch", [])) != length:
            columns["epoch"] = [float(i) for i in range(1, length + 1)]
        with self._lock:
            self._runs[str(name)] = columns

    def wait_for_browser(self, timeout: float | None = None) -> bool:
        """Block until a browser has opened the page (True), or ``timeout`` seconds (False)."""
        return self._connected.wait(timeout)

    def training_finished(self) -> None:
        with self._lock:
            self._state = "finished"
            self._finished_at = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """A copy of everything recorded: batches, epochs (as columns), state, seconds."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        keys: list[str] = ["epoch"]
        for row in self._epochs:
            keys += [k for k in row if k not in keys]
        epochs = {k: [row.get(k, math.nan) for row in self._epochs] for k in keys}
        end = self._finished_at or time.monotonic()
        seconds = 0.0 if self._started_at is None else end - self._started_at
        return {"batches": {k: list(v) for k, v in self._batches.items()}, "epochs": epochs,
                "state": self._state, "seconds": seconds, "data": self._data,
                "runs": {name: dict(run) for name, run in self._runs.items()}}

    # --- the server ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, open_browser: bool = False, timeout: float = 30.0) -> str:
        """Serve the page from a background thread; returns its URL. ``port=0`` picks a free
        port (read it back from ``.port`` or ``.url``)."""
        _bokeh()
        if self.running:
            return self.url
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._serve, name="fusion-dashboard", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the dashboard server did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            error = self._error
            if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
                raise DashboardError(
                    f"the dashboard cannot serve on {self.host}:{self.port}: port {self.port} "
                    "is in use (another dashboard?); pick another port (--port N, or 0 for "
                    "any free port)") from None
            raise DashboardError(f"the dashboard cannot serve on {self.host}:{self.port}: "
                                 f"{error}") from None
        if open_browser:
            webbrowser.open(self.url)
        return self.url

    def _serve(self) -> None:
        import asyncio

        from bokeh.server.server import Server
        from tornado.ioloop import IOLoop

        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = IOLoop.current()
        origins = self.allow_origins or sorted({self.host, "127.0.0.1", "localhost"} - {""})
        try:
            server = Server({"/": self._build_document}, io_loop=loop, address=self.host,
                            port=self.port, allow_websocket_origin=origins, num_procs=1)
            server.start()
        except BaseException as error:  # reported by start() in the caller's thread
            self._error = error
            self._ready.set()
            loop.close(all_fds=True)
            return
        self._loop, self._server, self.port = loop, server, server.port
        self._ready.set()
        try:
            loop.start()
        finally:
            loop.close(all_fds=True)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (open pages keep what they show) and wait for the thread to end."""
        thread, loop, server = self._thread, self._loop, self._server
        if thread is None:
            return
        if loop is not None and server is not None:
            def shutdown():
                server.stop()
                loop.stop()
            loop.add_callback(shutdown)
        thread.join(timeout)
        self._thread = self._loop = self._server = None

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the page --------------------------------------------------------------------------
    def _build_document(self, doc) -> None:
        page = _Page(self.title, self.snapshot(), live=True)
        self._connected.set()
        doc.title = self.title
        doc.add_root(page.layout)

        def update() -> None:
            page.update(self.snapshot())

        doc.add_periodic_callback(update, self.update_ms)

    def save_report(self, path: str | os.PathLike, resources: str = "inline") -> str:
        """Write the page with everything recorded so far as a static HTML file; returns the
        path. ``resources="inline"`` embeds BokehJS (the file works offline); "cdn" links it.
        """
        _bokeh()
        from bokeh.embed import file_html
        from bokeh.resources import CDN, INLINE

        page = _Page(self.title, self.snapshot(), live=False)
        text = file_html(page.layout, resources=INLINE if resources == "inline" else CDN,
                         title=f"{self.title}: report")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return os.fspath(path)


class _Page:
    """The Bokeh models of one page; ``update`` brings them up to a newer snapshot."""

    def __init__(self, title: str, snap: dict[str, Any], live: bool):
        from bokeh.layouts import column, row
        from bokeh.models import ColumnDataSource, CustomJS, Div, HoverTool, RadioButtonGroup
        from bokeh.plotting import figure

        self.live = live
        self.batch_count = 0
        self.epoch_keys: list[str] = []
        self.lines: dict[str, Any] = {}

        heading = Div(text=f"<h2 style='margin:0'>{html.escape(title)}</h2>")
        self.status = Div(name=STATUS, text="")
        self.batches = ColumnDataSource({"step": [], "epoch": [], "loss": [], "smooth": []},
                                        name=BATCHES)
        self.epochs = ColumnDataSource({"epoch": [], "loss": []}, name=EPOCHS)
        common = {"height": 300, "sizing_mode": "stretch_width", "tools": "pan,wheel_zoom,"
                  "box_zoom,reset,save"}
        # The batch loss twice, on a linear and a log scale; the toggle shows one of them.
        self.batch_figures = []
        for scale in ("linear", "log"):
            fig = figure(title="loss per batch", x_axis_label="step", y_axis_label="loss",
                         y_axis_type=scale, visible=False,
                         name=BATCH_FIGURE if scale == "linear" else f"{BATCH_FIGURE}_log",
                         **common)
            fig.line("step", "loss", source=self.batches, color="#9ecae1", alpha=0.6,
                     legend_label="batch loss")
            fig.line("step", "smooth", source=self.batches, color=_PALETTE[0], line_width=2,
                     legend_label="smoothed")
            fig.add_tools(HoverTool(tooltips=[("step", "@step"), ("loss", "@loss"),
                                              ("smoothed", "@smooth")]))
            fig.legend.location = "top_right"
            self.batch_figures.append(fig)
        self.scale = RadioButtonGroup(labels=["linear", "log"], active=0, name=SCALE_TOGGLE,
                                      visible=False, width=160)
        linear, log = self.batch_figures
        self.scale.js_on_change("active", CustomJS(args={"linear": linear, "log": log}, code="""
            linear.visible = this.active === 0;
            log.visible = this.active === 1;
        """))
        self.loss_figure = figure(title="loss per epoch", x_axis_label="epoch",
                                  y_axis_label="loss", name=LOSS_FIGURE, visible=False, **common)
        self.metric_figure = figure(title="metrics per epoch", x_axis_label="epoch",
                                    y_axis_label="value", name=METRIC_FIGURE, visible=False,
                                    **common)
        for fig in (self.loss_figure, self.metric_figure):
            fig.add_tools(HoverTool(tooltips=[("epoch", "@epoch"), ("", "$name: $y")]))
        # Every run logs a loss, so its line exists from the start; the metric figure gets an
        # empty line until the first metric arrives (Bokeh warns about a figure without any).
        self._add_line("loss", _PALETTE[0])
        self.epoch_keys.append("loss")
        self.metric_figure.line([], [], alpha=0)
        self._add_runs(snap.get("runs", {}))
        self.epoch_table = Div(name=EPOCH_TABLE, text="", visible=False,
                               sizing_mode="stretch_width")
        parts = [row(heading, self.status, sizing_mode="stretch_width"),
                 row(column(self.scale, linear, log, sizing_mode="stretch_width"),
                     self.loss_figure, self.metric_figure, sizing_mode="stretch_width"),
                 self.epoch_table]

        data: _DataSet | None = snap["data"]
        if data is not None:
            parts += self._data_section(data)
        self.layout = column(*parts, sizing_mode="stretch_width")
        self.update(snap)

    # --- data set -----------------------------------------------------------------------------
    def _data_section(self, data: _DataSet) -> list:
        from bokeh.layouts import column, row
        from bokeh.models import ColumnDataSource, Div, Select
        from bokeh.plotting import figure

        rows, count = data.features.shape
        shown = min(count, _MAX_DESCRIBE_COLUMNS)
        note = f" (the first {shown} of {count} features)" if shown < count else ""
        summary = (f"<h3>Data set</h3><p>{rows} rows, {count} features"
                   + (f", {len(data.classes)} classes" if data.classes else "") + f"{note}</p>")
        table = _describe_html(data.description)
        describe_div = Div(name=DESCRIBE, text=summary + table, sizing_mode="stretch_width")

        options = [(str(i), name) for i, name in enumerate(data.names)]
        fx, fy = data.shown
        histogram = ColumnDataSource(data.histogram(fx), name=HISTOGRAM)
        hist_figure = figure(title=f"{data.names[fx]} per class", height=320, width=480,
                             tools="pan,wheel_zoom,reset,save")
        hist_figure.quad(left="left", right="right", top="top", bottom=0, color="color",
                         alpha=0.5, legend_field="label", source=histogram)
        scatter = ColumnDataSource(data.scatter(fx, fy), name=SCATTER)
        scatter_figure = figure(title="two features", height=320, width=480,
                                x_axis_label=data.names[fx], y_axis_label=data.names[fy],
                                tools="pan,wheel_zoom,box_zoom,reset,save")
        scatter_figure.scatter("x", "y", color="color", legend_field="label", alpha=0.6,
                               size=5, source=scatter)
        if not self.live:  # a static report has no Python to answer the menus
            return [describe_div, row(hist_figure, scatter_figure)]

        pick = Select(title="histogram of", value=str(fx), options=options, width=200)
        pick_x = Select(title="scatter x", value=str(fx), options=options, width=200)
        pick_y = Select(title="scatter y", value=str(fy), options=options, width=200)

        def redraw_histogram(attr, old, new) -> None:
            histogram.data = data.histogram(int(new))
            hist_figure.title.text = f"{data.names[int(new)]} per class"

        def redraw_scatter(attr, old, new) -> None:
            fx, fy = int(pick_x.value), int(pick_y.value)
            scatter.data = data.scatter(fx, fy)
            scatter_figure.xaxis.axis_label = data.names[fx]
            scatter_figure.yaxis.axis_label = data.names[fy]

        pick.on_change("value", redraw_histogram)
        pick_x.on_change("value", redraw_scatter)
        pick_y.on_change("value", redraw_scatter)
        return [describe_div, row(column(pick, hist_figure), column(row(pick_x, pick_y),
                                                                    scatter_figure))]

    # --- curves -------------------------------------------------------------------------------
    def _add_line(self, key: str, colour: str) -> None:
        figure = self.loss_figure if key in ("loss", "val_loss") else self.metric_figure
        dashed = key.startswith("val_")
        label = key if not dashed else f"{key[4:]} (validation)"
        self.lines[key] = figure.line("epoch", key, source=self.epochs, color=colour,
                                      line_dash="dashed" if dashed else "solid", line_width=2,
                                      legend_label=label, name=key)
        figure.scatter("epoch", key, source=self.epochs, color=colour, size=5)
        figure.legend.location = "top_right" if figure is self.loss_figure else "bottom_right"

    def _add_runs(self, runs: Mapping[str, Mapping[str, list]]) -> None:
        """Each compared run in a colour of its own (after the live run's first colours)."""
        from bokeh.models import ColumnDataSource

        for i, (name, columns) in enumerate(runs.items()):
            colour = _PALETTE[(len(_PALETTE) - 1 - i) % len(_PALETTE)]
            source = ColumnDataSource({k: list(v) for k, v in columns.items()},
                                      name=f"{RUN_PREFIX}{name}")
            for key in columns:
                if key in ("epoch", "lr"):
                    continue
                base = key[4:] if key.startswith("val_") else key
                figure = self.loss_figure if base == "loss" else self.metric_figure
                dashed = key.startswith("val_")
                figure.line("epoch", key, source=source, color=colour, line_width=1.5,
                            alpha=0.8, line_dash="dashed" if dashed else "solid",
                            legend_label=f"{name}: {base}" + (" (validation)" if dashed else ""),
                            name=f"{name}: {key}")
                figure.visible = True

    def update(self, snap: dict[str, Any]) -> None:
        batches = snap["batches"]
        new = len(batches["step"]) - self.batch_count
        if new > 0:  # only the new points travel to the browser
            self.batches.stream({k: v[self.batch_count:] for k, v in batches.items()})
            self.batch_count += new
        if self.batch_count and not self.scale.visible:
            self.scale.visible = True
            self.batch_figures[self.scale.active].visible = True
        epochs = snap["epochs"]
        if len(epochs["epoch"]) != len(self.epochs.data["epoch"]) or (
                list(epochs) != list(self.epochs.data)):
            self.epochs.data = {k: list(v) for k, v in epochs.items()}
            for key in epochs:
                if key in ("epoch", "lr") or key in self.lines:
                    continue
                # A figure and its validation twin share a colour: solid and dashed.
                base = key[4:] if key.startswith("val_") else key
                if base not in self.epoch_keys:
                    self.epoch_keys.append(base)
                self._add_line(key, _PALETTE[self.epoch_keys.index(base) % len(_PALETTE)])
                if base != "loss":
                    self.metric_figure.visible = True
            if epochs["epoch"]:
                self.loss_figure.visible = True
                self.epoch_table.visible = True
            self.epoch_table.text = _epoch_html(epochs)
        self.status.text = _status_html(snap)


def _status_html(snap: dict[str, Any]) -> str:
    epochs = snap["epochs"]["epoch"]
    steps = len(snap["batches"]["step"])
    parts = [f"<b>{snap['state']}</b>", f"epoch {int(epochs[-1]) if epochs else 0}",
             f"{steps} batches", f"{snap['seconds']:.1f} s"]
    if steps:
        parts.append(f"last batch loss {_number(snap['batches']['loss'][-1])}")
    return "<p style='font-size:1.1em'>" + " · ".join(parts) + "</p>"


def _epoch_html(epochs: dict[str, list]) -> str:
    if not epochs["epoch"]:
        return ""
    keys = list(epochs)
    head = "".join(f"<th style='padding:2px 8px;position:sticky;top:0;background:white'>"
                   f"{html.escape(k)}</th>" for k in keys)
    rows = []
    count = len(epochs["epoch"])
    for i in range(max(0, count - _MAX_TABLE_ROWS), count):
        cells = "".join(
            f"<td style='padding:2px 8px;text-align:right'>"
            f"{int(epochs[k][i]) if k == 'epoch' else _number(epochs[k][i])}</td>" for k in keys)
        rows.append(f"<tr>{cells}</tr>")
    note = f" (the last {_MAX_TABLE_ROWS} of {count})" if count > _MAX_TABLE_ROWS else ""
    # newest first, in a box that scrolls past about eight rows
    return (f"<h3>Epochs{note}</h3><div style='max-height:220px;overflow-y:auto'>"
            "<table style='border-collapse:collapse;font-family:monospace'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(reversed(rows))}</tbody></table>"
            "</div>")


def _describe_html(description: Description) -> str:
    cell = "padding:2px 8px;text-align:right"
    head = "".join(f"<th style='{cell}'>{html.escape(c)}</th>" for c in description.columns)
    body = "".join(
        f"<tr><th style='{cell}'>{stat}</th>"
        + "".join(f"<td style='{cell}'>{_number(v)}</td>" for v in description.values[i])
        + "</tr>" for i, stat in enumerate(description.statistics))
    return ("<div style='overflow-x:auto'><table style='border-collapse:collapse;"
            f"font-family:monospace;font-size:0.9em'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


class DashboardCallback:
    """A :func:`fusion.train.fit` callback that shows the run on a live :class:`Dashboard`.

    The server starts when training begins (or at once with ``start=True``, so a page can be
    opened before), every batch loss and every epoch's figures are recorded, and when training
    ends the static ``report`` is written (if a path is given). The server goes on serving the
    finished run until :meth:`stop` (or the end of the process: its thread is a daemon), unless
    ``keep_serving=False``. ``serve=False`` records the run for the report and serves nothing.
    When it starts the server it prints the page's address; with ``wait=True`` training waits
    until a browser has opened the page (or ``wait`` seconds, given a number).

    >>> board = DashboardCallback(port=0, data=(X, y), report="run.html")  # doctest: +SKIP
    >>> fit(model, loss_fn, optimizer, loader, epochs=5, callbacks=[board])  # doctest: +SKIP
    >>> board.url  # doctest: +SKIP
    'http://127.0.0.1:40513/'
    """

    def __init__(self, dashboard: Dashboard | None = None, *, host: str = "127.0.0.1",
                 port: int = 5006, title: str = "Fusion training",
                 data: Any = None, feature_names: Sequence[str] | None = None,
                 class_names: Sequence[str] | Mapping | None = None,
                 report: str | os.PathLike | None = None, keep_serving: bool = True,
                 open_browser: bool = False, start: bool = False, serve: bool = True,
                 wait: bool | float = False):
        self.dashboard = dashboard or Dashboard(host=host, port=port, title=title)
        self.wait = wait
        if data is not None:
            features, labels = data if isinstance(data, tuple) else (data, None)
            self.dashboard.set_data(features, labels, feature_names=feature_names,
                                    class_names=class_names)
        self.report = report
        self.serve = serve
        self.keep_serving = keep_serving
        self.open_browser = open_browser
        self.model = self.optimizer = self.history = None
        self.stop_training = False
        if start:
            self._start()

    def _start(self) -> None:
        url = self.dashboard.start(open_browser=self.open_browser)
        print(f"dashboard: {url}", flush=True)

    @property
    def url(self) -> str:
        return self.dashboard.url

    def set_context(self, model, optimizer, history) -> None:
        self.model, self.optimizer, self.history = model, optimizer, history

    def on_train_begin(self, logs: dict) -> None:
        if self.serve and not self.dashboard.running:
            self._start()
        if self.serve and self.wait is not False:
            print(f"dashboard: training starts when {self.url} is open in a browser",
                  flush=True)
            self.dashboard.wait_for_browser(None if self.wait is True else float(self.wait))
        self.dashboard.training_started()

    def on_batch_end(self, batch: int, logs: dict) -> None:
        epoch = logs.get("epoch")
        self.dashboard.record_batch(logs["loss"], None if epoch is None else epoch + 1)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.dashboard.record_epoch(epoch + 1, logs)

    def on_train_end(self, logs: dict) -> None:
        self.dashboard.training_finished()
        if self.report is not None:
            self.dashboard.save_report(self.report)
        if not self.keep_serving:
            self.dashboard.stop()

    def stop(self) -> None:
        self.dashboard.stop()
