"""The ``fusion`` command: look at data, models and training runs from a shell.

``fusion describe data.csv [--columns 2 3] [--header | --no-header] [--json]``
    Count, Mean, Std, quartiles, Missing, Variance, Range, IQR, Skewness and Kurtosis of every
    numeric column of a CSV file (its first row may name the columns or not; text columns are
    skipped), printed as an aligned table wrapped to the terminal.

``fusion draw model.safetensors [-o model.svg] [--input-shape 1,64] [--depth N]``
    The architecture of a model saved with :func:`fusion.save`: a picture (.svg, .png, .pdf:
    needs graphviz's ``dot``) or its DOT source (.gv, .dot, or ``-o -`` for standard output).

``fusion dashboard [--data data.csv --label 1] [--history run.json ...] [--train digits]``
    The training dashboard in the browser (127.0.0.1:5006 unless ``--host``/``--port``): a
    data set's summary and plots, saved histories' curves (several are compared), or a small
    model training live on a bundled data set, which starts once a browser has opened the page
    (``--no-wait``: at once). It serves until Ctrl-C, or writes ``--report run.html`` and exits
    with ``--no-serve``.

``fusion info``
    The installed backends and their status (as ``python -m fusion info``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence

from .files import atomic_write

RENDERED = {".svg", ".png", ".pdf"}
DOT_SOURCE = {".gv", ".dot"}


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"an input shape is sizes separated by commas (e.g. 1,64), not {text!r}") from None
    if not shape or any(n < 0 for n in shape):
        raise argparse.ArgumentTypeError(f"not an input shape: {text!r}")
    return shape


def _column(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


# --- describe --------------------------------------------------------------------------------
#: Files from this size on show progress while they are read.
LARGE_FILE = 32 * 1024 * 1024


def cmd_describe(args: argparse.Namespace) -> int:
    from .data.describe import describe

    size = os.path.getsize(args.path) if os.path.isfile(args.path) else 0
    if size >= LARGE_FILE:
        from .progress import Task

        with Task(f"reading {args.path} ({size / 1e6:.0f} MB)", total=size, unit="B") as task:
            result = describe(args.path, columns=args.columns, header=args.header,
                              progress=lambda done, total: task.update(done))
    else:
        result = describe(args.path, columns=args.columns, header=args.header)
    if args.json:
        values = {c: {k: (None if math.isnan(v) else v) for k, v in stats.items()}
                  for c, stats in result.to_dict().items()}
        print(json.dumps(values, indent=1))
    else:
        width = args.width or shutil.get_terminal_size().columns
        print(result.to_string(width=width, precision=args.precision))
    return 0


# --- draw ------------------------------------------------------------------------------------
def cmd_draw(args: argparse.Namespace) -> int:
    from .nn import load
    from .viz.architecture import draw_architecture, infer_input_shape

    model = load(args.model)
    shape = None if args.no_shapes else (args.input_shape or infer_input_shape(model))
    title = f"{os.path.basename(args.model)}: {type(model).__name__}"
    dot = draw_architecture(model, shape, depth=args.depth, rankdir=args.rankdir, title=title)
    output = args.output or os.path.splitext(args.model)[0] + ".svg"
    if output == "-":
        sys.stdout.write(dot.source)
        return 0
    stem, suffix = os.path.splitext(output)
    suffix = suffix.lower()
    if suffix in DOT_SOURCE:
        with atomic_write(output, "w", encoding="utf-8") as f:
            f.write(dot.source)
    elif suffix in RENDERED:
        if shutil.which("dot") is None:
            print("fusion draw: rendering needs graphviz's `dot` program, which is not "
                  "installed (apt-get install graphviz, brew install graphviz); "
                  f"write the DOT source instead with -o {stem}.gv", file=sys.stderr)
            return 1
        import graphviz

        try:
            dot.render(outfile=output, format=suffix[1:], cleanup=True)
        except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as error:
            print(f"fusion draw: graphviz could not draw {output!r}: "
                  f"{str(error).strip().splitlines()[-1]}", file=sys.stderr)
            return 1
    else:
        print(f"fusion draw: cannot write {output!r}: the suffix must be one of "
              f"{sorted(RENDERED | DOT_SOURCE)}", file=sys.stderr)
        return 2
    print(f"wrote {output}" + (f" (input shape {shape})" if shape else ""))
    return 0


# --- dashboard -------------------------------------------------------------------------------
def _train_live(name: str, epochs: int, callback, seed: int) -> None:
    """A small MLP trained on a bundled data set, shown live on the dashboard."""
    import fusion
    from fusion import datasets, nn, optim
    from fusion.data import DataLoader, StandardScaler, TensorDataset, train_test_split
    from fusion.train import fit

    loaders = {"digits": datasets.digits, "breast_cancer": datasets.breast_cancer}
    bunch = loaders[name](as_bunch=True)
    X, y = bunch.data, bunch.target
    fusion.manual_seed(seed)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, seed=seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    callback.dashboard.set_data(X, y, feature_names=bunch.feature_names,
                                class_names=bunch.target_names)
    classes = int(y.max()) + 1
    model = nn.Sequential(nn.Linear(X.shape[1], 32), nn.ReLU(), nn.Linear(32, classes))
    fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2),
        DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True),
        DataLoader(TensorDataset(X_val, y_val), batch_size=256), epochs=epochs,
        callbacks=[callback], verbose=2)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .viz.dashboard import Dashboard, DashboardCallback

    if args.no_serve and not args.report:
        print("fusion dashboard: --no-serve needs --report PATH (else there is nothing to do)",
              file=sys.stderr)
        return 2
    board = Dashboard(host=args.host, port=args.port, title=args.title)
    if args.data:
        board.set_data(args.data, label_column=args.label)
    if args.history:
        from .train import History

        histories = [(path, History.from_json(path)) for path in args.history]
        if not args.train:  # the first is this page's run, the others compared with it
            _, history = histories.pop(0)
            for i, epoch in enumerate(history.epoch):
                board.record_epoch(epoch, {k: v[i] for k, v in history.history.items()})
            board.training_finished()
        for path, history in histories:
            board.add_run(os.path.splitext(os.path.basename(path))[0], history)
    serve = not args.no_serve
    if serve:
        url = board.start(open_browser=args.open)
        # Ctrl-C stops it even when started by a process that ignores SIGINT (children inherit that)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"fusion dashboard: serving on {url} (Ctrl-C stops)", flush=True)
    try:
        if args.train:
            wait = serve and args.wait
            if wait:
                print(f"fusion dashboard: training starts when {url} is open in a browser "
                      "(--no-wait: at once)", flush=True)
            callback = DashboardCallback(board, serve=serve, wait=wait)
            _train_live(args.train, args.epochs, callback, args.seed)
        if args.report:
            board.save_report(args.report)
            print(f"wrote {args.report}")
        while serve:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    return 0


# --- info ------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from .info import info

    return info(as_json=args.json, start=not args.no_start)


# --- the parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusion", description="Look at data, models and training runs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("describe", help="summary statistics of a CSV file's columns",
                            description="Summary statistics of every numeric column.")
    p.add_argument("path", help="a CSV file (the first row may name the columns)")
    p.add_argument("--columns", nargs="+", type=_column, metavar="COLUMN",
                   help="describe only these columns (names or positions among the numeric)")
    header = p.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="the first row names the columns")
    header.add_argument("--no-header", dest="header", action="store_false",
                        help="the first row is data (columns are named 0, 1, ...)")
    p.add_argument("--width", type=int, help="wrap the table to this many characters")
    p.add_argument("--precision", type=int, default=6, help="decimals shown (default 6)")
    p.add_argument("--json", action="store_true", help="print {column: {statistic: value}}")
    p.set_defaults(run=cmd_describe)

    p = commands.add_parser("draw", help="draw a saved model's architecture",
                            description="Draw the architecture of a model saved with "
                                        "fusion.save.")
    p.add_argument("model", help="a file written by fusion.save")
    p.add_argument("-o", "--output", help="the picture (.svg, .png, .pdf), DOT source (.gv, "
                   ".dot) or - for DOT on standard output (default: MODEL with .svg)")
    p.add_argument("--input-shape", type=_shape, metavar="N,D,...",
                   help="the shape of one input batch (default: 1 by the first layer's size)")
    p.add_argument("--no-shapes", action="store_true", help="do not run the model for shapes")
    p.add_argument("--depth", type=int, help="draw modules deeper than this as one box")
    p.add_argument("--rankdir", choices=["TB", "LR"], default="TB",
                   help="top to bottom (default) or left to right")
    p.set_defaults(run=cmd_draw)

    p = commands.add_parser("dashboard", help="the training dashboard in the browser",
                            description="Serve the training dashboard.")
    p.add_argument("--data", help="a CSV file whose summary and plots the page shows")
    p.add_argument("--label", type=_column, help="the CSV column that holds the classes")
    p.add_argument("--history", nargs="+", metavar="RUN.json",
                   help="runs saved with History.to_json (several: compared on the curves)")
    p.add_argument("--train", choices=["digits", "breast_cancer"],
                   help="train a small MLP on this bundled data set, live")
    p.add_argument("--epochs", type=int, default=30, help="epochs of --train (default 30)")
    p.add_argument("--seed", type=int, default=0, help="the seed of --train (default 0)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=5006, help="the port (default 5006; 0: any)")
    p.add_argument("--title", default="Fusion training", help="the page's title")
    p.add_argument("--report", help="write a static HTML report here (after --train)")
    p.add_argument("--no-serve", action="store_true",
                   help="do not serve: only write --report (and train)")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                   help="with --train, start training once a browser has opened the page "
                        "(default; --no-wait: at once)")
    p.set_defaults(run=cmd_dashboard)

    p = commands.add_parser("info", help="the installed backends and their status")
    p.add_argument("--json", action="store_true", help="one JSON object per backend")
    p.add_argument("--no-start", action="store_true", help="list without starting them")
    p.set_defaults(run=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fusion`` command with ``argv`` (default: the process's arguments).

    >>> main(["describe", "data.csv", "--columns", "2", "3"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from .core.backend import BackendError

    try:
        return args.run(args)
    except BrokenPipeError:  # the reader left (| head): stop quietly, as shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except ImportError as error:  # an optional extra that is not installed
        print(f"fusion {args.command}: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, IndexError, BackendError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"fusion {args.command}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
