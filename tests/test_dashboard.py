"""The training dashboard: its record of a run, its report, and its page in a real browser.

The browser test drives Debian's chromium through chromedriver (selenium). It is skipped only
when chromium, chromedriver or selenium is missing; CI installs them. The screenshot it takes
is kept under the test's tmp path and copied to $FUSION_ARTIFACTS when that is set.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.request

import numpy as np
import pytest

pytest.importorskip("bokeh")

import fusion  # noqa: E402
from fusion import nn, optim  # noqa: E402
from fusion.data import DataLoader, TensorDataset  # noqa: E402
from fusion.train import fit  # noqa: E402
from fusion.viz.dashboard import (  # noqa: E402
    BATCH_FIGURE,
    BATCHES,
    DESCRIBE,
    EPOCH_TABLE,
    EPOCHS,
    HISTOGRAM,
    LOSS_FIGURE,
    METRIC_FIGURE,
    RUN_PREFIX,
    SCALE_TOGGLE,
    STATUS,
    Dashboard,
    DashboardCallback,
    DashboardError,
)

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
CHROMEDRIVER = shutil.which("chromedriver")


def two_blobs(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)) + y[:, None] * np.array([2.0, -1.0, 0.5, 0.0])
    return x.astype(np.float32), y


def train(callback, epochs: int = 3, batch_size: int = 32):
    fusion.manual_seed(0)
    x, y = two_blobs()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader,
               val, epochs=epochs, callbacks=[callback], verbose=False)


# --- without a browser --------------------------------------------------------------------
def test_callback_records_what_fit_reports(tmp_path):
    report = tmp_path / "report.html"
    callback = DashboardCallback(port=0, report=report, keep_serving=False)
    history = train(callback)
    snap = callback.dashboard.snapshot()
    assert snap["state"] == "finished"
    assert snap["epochs"]["epoch"] == [1.0, 2.0, 3.0]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(snap["epochs"][key], history[key])
    assert snap["batches"]["step"] == list(range(1, 10))  # 96 rows / 32 = 3 batches a epoch
    assert snap["batches"]["epoch"] == [1.0] * 3 + [2.0] * 3 + [3.0] * 3
    # The epoch loss is the mean of its batch losses (equal batch sizes).
    np.testing.assert_allclose(np.mean(snap["batches"]["loss"][:3]), history["loss"][0],
                               rtol=1e-5)
    assert not callback.dashboard.running  # keep_serving=False stops the server at the end
    text = report.read_text()
    assert "<html" in text.lower() and "Bokeh" in text
    assert "report" in text and "finished" in text


def test_report_holds_the_run_and_the_data(tmp_path):
    board = Dashboard(title="blobs")
    x, y = two_blobs()
    board.set_data(x, y, feature_names=["w", "x", "y", "z"], class_names=["left", "right"])
    board.record_batch(0.75, 1)
    board.record_epoch(1, {"loss": 0.6931, "accuracy": 0.5})
    board.training_finished()
    path = board.save_report(tmp_path / "r.html")
    text = open(path).read()
    assert "Skewness" in text and "left" in text and "right" in text
    assert "0.6931" in text  # the epoch table
    assert not board.running  # a report needs no server


def test_labelled_csv_like_the_42_data(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("842302,M,17.99,10.38\n842517,B,20.57,17.77\n84300903,M,19.69,21.25\n")
    board = Dashboard()
    board.set_data(path, label_column=1)
    data = board.snapshot()["data"]
    assert data.names == ["0", "2", "3"] and data.classes == ["B", "M"]
    assert data.labels.tolist() == ["M", "B", "M"]
    assert data.description["2"]["Max"] == 20.57
    bars = data.histogram(1, bins=4)
    assert sum(bars["top"]) == 3 and set(bars["label"]) == {"B", "M"}
    with pytest.raises(KeyError, match="no label column 'kind'"):
        board.set_data(path, label_column="kind")


def test_serves_on_localhost_and_reports_a_taken_port():
    with Dashboard(port=0) as board:
        assert board.url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(board.url, timeout=10).read().decode()
        assert "bokeh" in page.lower()
        taken = Dashboard(port=board.port)
        with pytest.raises(DashboardError, match=f"cannot serve.*port {board.port} is in use"):
            taken.start()
        assert not taken.running
    assert not board.running
    with socket.socket() as probe:  # nothing listens on the port after stop()
        # SO_REUSEADDR: closed connections in TIME_WAIT may remain; a listener may not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", board.port))


def test_page_hides_empty_panels_smooths_and_compares_runs():
    from bokeh.models import ColumnDataSource

    from fusion.viz.dashboard import SMOOTHING, _Page

    board = Dashboard()
    page = _Page("t", board.snapshot(), live=False)
    hidden = [page.batch_figures[0], page.batch_figures[1], page.scale, page.loss_figure,
              page.metric_figure, page.epoch_table]
    assert [model.visible for model in hidden] == [False] * 6  # nothing to show yet

    losses = [2.0, 1.0, 1.5, 0.5, 0.25]
    for loss in losses:
        board.record_batch(loss, 1)
    board.record_epoch(1, {"loss": 1.05, "accuracy": 0.5})
    board.add_run("adam", {"loss": [0.9, 0.5], "val_loss": [1.0, 0.6]})
    page = _Page("t", board.snapshot(), live=False)
    assert page.batch_figures[0].visible and not page.batch_figures[1].visible
    assert page.scale.visible and page.loss_figure.visible and page.metric_figure.visible
    # the smoothed loss: an exponential moving average divided by the weight it has gathered
    average, expected = 0.0, []
    for step, loss in enumerate(losses, start=1):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        expected.append(average / (1 - SMOOTHING ** step))
    np.testing.assert_allclose(page.batches.data["smooth"], expected)
    assert page.batches.data["smooth"][0] == 2.0  # starts at the first loss, not near 0
    run = next(m for m in page.layout.select({"type": ColumnDataSource})
               if m.name == f"{RUN_PREFIX}adam")
    assert run.data["epoch"] == [1.0, 2.0] and run.data["val_loss"] == [1.0, 0.6]
    names = {r.name for r in page.loss_figure.renderers}
    assert {"adam: loss", "adam: val_loss", "loss"} <= names


def test_epoch_table_is_capped_and_scrolls():
    board = Dashboard()
    for epoch in range(1, 601):
        board.record_epoch(epoch, {"loss": 1.0 / epoch})
    from fusion.viz.dashboard import _epoch_html

    text = _epoch_html(board.snapshot()["epochs"])
    assert "overflow-y:auto" in text and "max-height" in text
    assert text.count("<tr>") == 1 + 500 and "the last 500 of 600" in text
    assert text.index(">600<") < text.index(">101<")  # newest first


def test_dashboard_features_shown_first_separate_the_classes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = np.column_stack([np.arange(200.0), np.zeros(200), rng.normal(size=200),
                         rng.normal(size=200) + 3 * y, rng.normal(size=200) + y])
    board = Dashboard()
    board.set_data(x, y)
    assert board.snapshot()["data"].shown == [3, 4]  # not the id (0) nor the constant (1)


def test_cli_compares_several_histories(tmp_path, capsys):
    from fusion.cli import main
    from fusion.train import History

    paths = []
    for name, losses in (("adam", [0.9, 0.4]), ("sgd", [1.2, 0.8])):
        history = History()
        for loss in losses:
            history.append({"loss": loss, "val_loss": loss + 0.1})
        paths.append(tmp_path / f"{name}.json")
        history.to_json(paths[-1])
    report = tmp_path / "compare.html"
    assert main(["dashboard", "--history", *map(str, paths), "--report", str(report),
                 "--no-serve"]) == 0
    text = report.read_text()
    assert f"{RUN_PREFIX}sgd" in text and "sgd: loss" in text and "0.9" in text


# --- in a real browser --------------------------------------------------------------------
@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1500,1300",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


# Reads a column of a named ColumnDataSource from the page's Bokeh document (null if absent).
READ_COLUMN = """
const [name, column] = arguments;
if (!window.Bokeh || Bokeh.documents.length === 0) return null;
const source = Bokeh.documents[0].get_model_by_name(name);
if (source === null) return null;
const data = source.data;
const values = data instanceof Map ? data.get(column) : data[column];
return values === undefined ? null : Array.from(values);
"""
READ_TEXT = """
if (!window.Bokeh || Bokeh.documents.length === 0) return null;
const model = Bokeh.documents[0].get_model_by_name(arguments[0]);
return model === null ? null : model.text;
"""


def wait_for(driver, condition, what: str, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: condition(d), message=f"timed out waiting for {what}")


def column(driver, source: str, name: str):
    return driver.execute_script(READ_COLUMN, source, name)


READ_VISIBLE = """
const model = Bokeh.documents[0].get_model_by_name(arguments[0]);
return model === null ? null : model.visible;
"""


def colour_pixels(png: bytes, colour: str, tolerance: int = 40) -> int:
    """How many pixels of a screenshot are close to ``colour`` (#rrggbb)."""
    import io

    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image - target).sum(axis=2) < tolerance).sum())


def test_page_shows_the_run_live(browser, tmp_path, capsys):
    import threading

    x, y = two_blobs()
    callback = DashboardCallback(port=0, data=(x, y), feature_names=["w", "x", "y", "z"],
                                 class_names=["left", "right"], report=tmp_path / "run.html",
                                 start=True, wait=True)
    assert f"dashboard: {callback.url}" in capsys.readouterr().out  # it prints its address
    blank = browser.get_screenshot_as_png()  # an empty page: what "no curves" looks like
    result = {}
    # fit waits for a browser to open the page before its first batch
    trainer = threading.Thread(target=lambda: result.setdefault("history", train(callback)))
    trainer.start()
    try:
        browser.get(callback.url)
        wait_for(browser, lambda d: d.execute_script(READ_TEXT, STATUS) is not None,
                 "the page's document")
        trainer.join(120)
        assert not trainer.is_alive()
        history = result["history"]

        wait_for(browser, lambda d: len(column(d, EPOCHS, "epoch") or []) == 3,
                 "three epochs on the page")
        wait_for(browser, lambda d: len(column(d, BATCHES, "loss") or []) == 9,
                 "nine batch losses on the page")
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            np.testing.assert_allclose(column(browser, EPOCHS, key), history[key], rtol=1e-6)
        wait_for(browser, lambda d: "finished" in (d.execute_script(READ_TEXT, STATUS) or ""),
                 "the finished status")

        describe_text = browser.execute_script(READ_TEXT, DESCRIBE)
        assert "Skewness" in describe_text and "96 rows, 4 features, 2 classes" in describe_text
        assert sum(column(browser, HISTOGRAM, "top")) == 96  # every row in one bar

        # The menu of the histogram is answered by Python on the server: pick feature "y".
        browser.execute_script("""
            const menus = Bokeh.documents[0].all_models;
            for (const m of menus) if (m.title === 'histogram of') m.value = '2';
        """)
        expected_left, _ = np.histogram(x[y == 0, 2], bins=np.histogram_bin_edges(x[:, 2], 20))
        wait_for(browser, lambda d: (column(d, HISTOGRAM, "top") or [])[:20]
                 == expected_left.astype(float).tolist(), "the histogram of feature 2")

        # What a user sees: the curves drawn, in the colours of the page's lines. The
        # smoothed batch loss and the epoch loss are drawn in the first colour, accuracy in the
        # second; a page without them has (next to) none of these pixels.
        browser.execute_script("window.scrollTo(0, 0)")
        for name in (f"{BATCH_FIGURE}", LOSS_FIGURE, METRIC_FIGURE, EPOCH_TABLE):
            assert browser.execute_script(READ_VISIBLE, name) is True, name
        assert browser.execute_script(READ_VISIBLE, f"{BATCH_FIGURE}_log") is False
        screenshot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(screenshot))
        png = screenshot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert colour_pixels(blank, "#1f77b4") < 50
        assert colour_pixels(png, "#1f77b4") > 400  # loss curves
        assert colour_pixels(png, "#ff7f0e") > 150  # accuracy curves
        # The log-scale toggle swaps the batch-loss panels.
        browser.execute_script(f"""
            Bokeh.documents[0].get_model_by_name('{SCALE_TOGGLE}').active = 1;""")
        assert browser.execute_script(READ_VISIBLE, f"{BATCH_FIGURE}_log") is True
        assert browser.execute_script(READ_VISIBLE, BATCH_FIGURE) is False
        artefacts = os.environ.get("FUSION_ARTIFACTS")
        if artefacts:
            os.makedirs(artefacts, exist_ok=True)
            shutil.copy(screenshot, os.path.join(artefacts, "dashboard.png"))
    finally:
        callback.stop()

    # The static report, opened from disk with no server, holds the same curves.
    browser.get((tmp_path / "run.html").as_uri())
    wait_for(browser, lambda d: len(column(d, EPOCHS, "epoch") or []) == 3, "the report")
    np.testing.assert_allclose(column(browser, EPOCHS, "val_loss"), history["val_loss"],
                               rtol=1e-6)
    assert json.dumps(column(browser, BATCHES, "step")) == json.dumps(list(range(1, 10)))


# --- the command line ------------------------------------------------------------------------
def test_cli_report_from_a_saved_history_and_a_csv(tmp_path, capsys):
    from fusion.cli import main
    from fusion.train import History

    history = History()
    history.append({"loss": 0.9, "val_loss": 1.0, "accuracy": 0.6})
    history.append({"loss": 0.4, "val_loss": 0.55, "accuracy": 0.8})
    run = tmp_path / "run.json"
    history.to_json(run)
    data = tmp_path / "data.csv"
    data.write_text("842302,M,17.99,10.38\n842517,B,20.57,17.77\n84300903,M,19.69,21.25\n")
    report = tmp_path / "report.html"
    assert main(["dashboard", "--history", str(run), "--data", str(data), "--label", "1",
                 "--report", str(report), "--no-serve"]) == 0
    assert f"wrote {report}" in capsys.readouterr().out
    text = report.read_text()
    assert "0.55" in text and "Skewness" in text and "3 rows, 3 features, 2 classes" in text
    assert main(["dashboard", "--no-serve"]) == 2
    assert "--no-serve needs --report" in capsys.readouterr().err


def test_cli_trains_a_bundled_data_set_into_a_report(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from fusion.cli import main

    report = tmp_path / "cancer.html"
    assert main(["dashboard", "--train", "breast_cancer", "--epochs", "2", "--no-serve",
                 "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "epoch 02/2" in out  # fit's progress lines
    text = report.read_text()
    assert "569 rows, 30 features, 2 classes" in text and "mean radius" in text


def test_cli_serves_until_interrupted(tmp_path):
    import select
    import signal
    import subprocess
    import sys
    import time

    # stderr goes to a file: a pipe nobody reads fills up with Bokeh's log and blocks the server
    errors = open(tmp_path / "stderr.txt", "w")
    process = subprocess.Popen([sys.executable, "-m", "fusion.cli", "dashboard", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the command printed no URL within 60 s"
        line = process.stdout.readline()
        assert line.startswith("fusion dashboard: serving on http://127.0.0.1:"), line
        url = line.split("serving on ")[1].split()[0]
        page = urllib.request.urlopen(url, timeout=20).read().decode()
        assert "bokeh" in page.lower()
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 45  # stop() waits up to 10 s for the server thread
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.returncode == 0, (tmp_path / "stderr.txt").read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
        errors.close()
