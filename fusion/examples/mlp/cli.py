"""The ``fusion-mlp`` command: dataset, split, train, predict and plot.

Every subcommand works on its own, on files the previous one wrote. Arguments and files are
checked before any work starts; a problem is one line on standard error (naming the file, row
and column where it applies) and a non-zero exit status: 2 for a bad argument, 1 for a bad
file or model.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .data import CLASSES, COLUMNS, FEATURES, InputError, read_samples, write_rows
from .model import ACTIVATIONS, INITS, LOSSES, OPTIMIZERS

PROG = "fusion-mlp"

#: The example's settings: with the split's default seed they reach a validation accuracy
#: above 97% and a validation binary cross-entropy under 0.08 on every backend. Sigmoid units
#: with Adam's small steps and mini-batches of 32 learn smoothly on these 455 samples; early
#: stopping keeps the epoch of lowest validation loss, before the network starts to overfit.
DEFAULTS = {
    "layer": [24, 24], "activation": ["sigmoid"], "init": "xavierUniform", "epochs": 200,
    "batch_size": 32, "learning_rate": 0.001, "optimizer": "adam", "loss": "binaryCrossentropy",
    "patience": 20, "seed": 42, "valid": 0.2, "model": "saved_model.safetensors",
    "history": "history.json", "plot": "learning_curves.png",
}


class UsageError(InputError):
    """A setting that cannot work (exit status 2, like argparse's errors)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to look, no usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- argument types: each says what it expected and what it got --------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _name_among(kind: str, names: Sequence[str]) -> Callable[[str], str]:
    """A type that accepts ``names`` in any letter case and returns the canonical spelling."""
    by_key = {name.lower(): name for name in names}

    def parse(text: str) -> str:
        try:
            return by_key[text.lower()]
        except KeyError:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {text!r}; expected one of {', '.join(names)}") from None

    parse.__name__ = kind  # argparse names the type in some messages
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    names = {"activation": list(ACTIVATIONS), "init": list(INITS), "loss": list(LOSSES),
             "optimizer": list(OPTIMIZERS)}
    parser = _Parser(
        prog=PROG,
        description="A multilayer perceptron that tells malignant from benign breast cancer "
                    "cell nuclei (Wisconsin Diagnostic Breast Cancer data), written with Fusion.",
        epilog="Typical run: fusion-mlp dataset data.csv; fusion-mlp split data.csv; "
               "fusion-mlp train; fusion-mlp predict --data data_valid.csv")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    dataset = commands.add_parser(
        "dataset", help="write data.csv from the copy of the data scikit-learn ships",
        description="Write the Wisconsin data (569 samples) in the school's format: no header; "
                    f"an id, the diagnosis M or B, then {FEATURES} features per row. The ids "
                    "are row numbers: scikit-learn's copy has none.")
    dataset.add_argument("path", nargs="?", default="data.csv",
                         help="file to write (default %(default)s)")

    split = commands.add_parser(
        "split", help="split data.csv into data_train.csv and data_valid.csv",
        description="Split a data.csv file into a training and a validation part, stratified "
                    "on the diagnosis and seeded; both keep the input's format, row for row.")
    split.add_argument("data", help="the data.csv file to split")
    split.add_argument("--valid", type=_fraction, default=DEFAULTS["valid"],
                       help="fraction of the rows for validation (default %(default)s)")
    split.add_argument("--seed", type=_non_negative_int, default=DEFAULTS["seed"],
                       help="seed of the split (default %(default)s)")
    split.add_argument("--out-dir", "--out_dir", dest="out_dir", default=None,
                       help="folder of data_train.csv and data_valid.csv (default: the "
                            "input's folder)")

    train = commands.add_parser(
        "train", help="train a perceptron and save it",
        description="Train a perceptron of at least two hidden layers with a softmax output "
                    "over B and M; print one line per epoch; save the model with the scaler "
                    "of its features, the history (JSON and CSV) and the learning curves.")
    train.add_argument("--train", default="data_train.csv",
                       help="training data (default %(default)s)")
    train.add_argument("--valid", default="data_valid.csv",
                       help="validation data (default %(default)s)")
    train.add_argument("--layer", type=_positive_int, nargs="+", default=DEFAULTS["layer"],
                       metavar="N", help="sizes of the hidden layers, at least two "
                                         "(default: 24 24)")
    train.add_argument("--activation", type=_name_among("activation", names["activation"]),
                       nargs="+", default=DEFAULTS["activation"], metavar="NAME",
                       help="activation of the hidden layers, one for all or one per layer: "
                            f"{', '.join(names['activation'])} (default: sigmoid)")
    train.add_argument("--init", type=_name_among("initialisation", names["init"]),
                       default=DEFAULTS["init"], metavar="NAME",
                       help=f"weight initialisation: {', '.join(names['init'])} "
                            "(default %(default)s)")
    train.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"],
                       help="most epochs (early stopping may end sooner; default %(default)s)")
    train.add_argument("--batch_size", "--batch-size", dest="batch_size", type=_positive_int,
                       default=DEFAULTS["batch_size"],
                       help="samples per step; the training set's size or more means full "
                            "batch (default %(default)s)")
    train.add_argument("--learning_rate", "--learning-rate", "--lr", dest="learning_rate",
                       type=_positive_float, default=DEFAULTS["learning_rate"],
                       help="step size (default %(default)s)")
    train.add_argument("--optimizer", type=_name_among("optimizer", names["optimizer"]),
                       default=DEFAULTS["optimizer"], metavar="NAME",
                       help=f"{', '.join(names['optimizer'])} (default %(default)s)")
    train.add_argument("--loss", type=_name_among("loss", names["loss"]),
                       default=DEFAULTS["loss"], metavar="NAME",
                       help="binaryCrossentropy (categoricalCrossentropy is the same for two "
                            "classes; default %(default)s)")
    train.add_argument("--patience", type=_non_negative_int, default=DEFAULTS["patience"],
                       help="epochs without a lower validation loss before stopping, the best "
                            "weights restored; 0 trains every epoch (default %(default)s)")
    train.add_argument("--no-jit", dest="jit", action="store_false",
                       help="run every step in Python instead of replaying it with fusion.jit")
    train.add_argument("--seed", type=_non_negative_int, default=DEFAULTS["seed"],
                       help="seed of the initial weights and the shuffling "
                            "(default %(default)s)")
    train.add_argument("--backend", default=None,
                       help="Fusion backend, e.g. numpy or numba (default: $FUSION_BACKEND, "
                            "else numpy)")
    train.add_argument("--model", default=DEFAULTS["model"],
                       help="where to save the model (default %(default)s)")
    train.add_argument("--history", default=DEFAULTS["history"],
                       help="the history as JSON, and as CSV beside it (default %(default)s)")
    train.add_argument("--plot", default=DEFAULTS["plot"],
                       help="learning curves PNG (default %(default)s)")
    train.add_argument("--no-plot", action="store_true", help="draw no learning curves")
    train.add_argument("--plots", nargs="?", const="plots", default=None, metavar="DIR",
                       help="also write the data plots, the validation confusion matrix and "
                            "the architecture into DIR (default: plots)")
    train.add_argument("--compare", nargs="+", default=[], metavar="HISTORY.json",
                       help="histories of earlier runs to draw with this one")
    train.set_defaults(check=_check_train_args, parser=train)

    predict = commands.add_parser(
        "predict", help="evaluate a saved model on a data file",
        description="Load a model saved by train, predict the diagnosis of every row and "
                    "print the binary cross-entropy E = -1/N sum [y log p + (1-y) log(1-p)] "
                    "(p = P(M), clamped to [1e-15, 1 - 1e-15]), accuracy, precision, recall, "
                    "F1 (M is the positive class) and the confusion matrix.")
    predict.add_argument("--model", default=DEFAULTS["model"],
                         help="the saved model (default %(default)s)")
    predict.add_argument("--data", default="data_valid.csv",
                         help="the rows to predict (default %(default)s)")
    predict.add_argument("--output", default=None,
                         help="write id, predicted diagnosis and P(M) of every row as CSV")
    predict.add_argument("--backend", default=None,
                         help="Fusion backend (default: $FUSION_BACKEND, else numpy)")

    plot = commands.add_parser(
        "plot", help="draw the learning curves of several runs on one figure",
        description="Loss and accuracy per epoch, training (solid) and validation (dashed), "
                    "of every history given, one colour per run.")
    plot.add_argument("histories", nargs="+", metavar="HISTORY.json",
                      help="history files written by train")
    plot.add_argument("--labels", nargs="+", default=None,
                      help="a name per run (default: the file names)")
    plot.add_argument("--output", "-o", default="compare.png",
                      help="the PNG to write (default %(default)s)")
    return parser


def _check_train_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say alone: counts that depend on each other."""
    if len(args.layer) < 2:
        parser.error(f"argument --layer: a multilayer perceptron needs at least two hidden "
                     f"layers, got {len(args.layer)}")
    if len(args.activation) not in (1, len(args.layer)):
        parser.error(f"argument --activation: give one activation for all layers or one per "
                     f"layer ({len(args.layer)}), got {len(args.activation)}")


# --- dataset and split -----------------------------------------------------------------------
def cmd_dataset(args: argparse.Namespace) -> int:
    from .data import bundled_rows

    rows = bundled_rows()
    write_rows(args.path, rows)
    counts = {name: sum(row[1] == name for row in rows) for name in CLASSES}
    print(f"wrote {args.path}: {len(rows)} samples ({counts['B']} B, {counts['M']} M), "
          f"{COLUMNS} columns: id, diagnosis, {FEATURES} features")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from .data import split_samples

    samples = read_samples(args.data)
    out = Path(args.out_dir) if args.out_dir is not None else Path(args.data).parent
    if not out.is_dir():
        raise InputError(f"{out}: no such folder (--out-dir)")
    train, valid = split_samples(samples, args.valid, args.seed)
    for name, positions in (("data_train.csv", train), ("data_valid.csv", valid)):
        write_rows(out / name, [samples.rows[i] for i in positions])
        part = samples.y[positions]
        print(f"wrote {out / name}: {len(positions)} samples "
              f"({int(np.sum(part == 0))} B, {int(np.sum(part == 1))} M)")
    return 0


# --- train -----------------------------------------------------------------------------------
class _EpochLines:
    """Prints the subject's line per epoch and times the epochs."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.width = max(2, len(str(epochs)))
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.seconds.append(time.perf_counter() - self._started)
        print(f"epoch {epoch + 1:0{self.width}d}/{self.epochs} - loss: {logs['loss']:.4f} - "
              f"val_loss: {logs['val_loss']:.4f} - acc: {logs['accuracy']:.4f} - "
              f"val_acc: {logs['val_accuracy']:.4f}", flush=True)


def _select_backend(name: str | None) -> str:
    import fusion

    if name is not None:
        try:
            fusion.set_backend(name)
        except fusion.BackendNotFoundError as exc:
            raise UsageError(f"argument --backend: {exc}") from None
    return fusion.get_backend().name


def _probabilities(model, X: np.ndarray) -> np.ndarray:
    """P(M) of every row of standardised features."""
    from fusion.train import predict

    return predict(model, X.astype(np.float32)).numpy()[:, 1].astype(np.float64)


def _read_history(path: str):
    from fusion.train import History

    try:
        history = History.from_json(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such history file") from None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: is not a history written by train ({exc})") from None
    missing = [k for k in ("loss", "val_loss", "accuracy", "val_accuracy") if k not in history]
    if missing:
        raise InputError(f"{path}: is not a history written by train (no {', '.join(missing)})")
    return history


def draw_curves(runs, path: str, title: str | None = None, best_epoch: int | None = None
                ) -> None:
    """Loss and accuracy of training and validation, every run (a History, or a dict of
    them by name) on the same two panels; ``best_epoch`` is marked with a dotted line."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    from fusion.viz.plots import DPI, plot_learning_curves

    figure = plot_learning_curves(runs, metrics=["loss", "accuracy"], best_epoch=best_epoch)
    if title:
        figure.suptitle(title, fontsize="medium")
        figure.tight_layout()
    try:
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be written ({exc})") from None
    finally:
        plt.close(figure)


def _check_writable(folder: Path, flag: str) -> None:
    """Create and remove a file in ``folder``: the one test of writability that holds for
    every user (root included) and every file system (read-only mounts included)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"{folder}: cannot be written ({exc.strerror or exc}) ({flag})") \
            from None


def _check_destinations(args: argparse.Namespace) -> None:
    """Every file train writes must have a folder it can write to, known before the first
    epoch: a run must not end in an error after all its training."""
    from .model import model_path

    outputs = {"--model": model_path(args.model), "--history": Path(args.history)}
    if not args.no_plot:
        outputs["--plot"] = Path(args.plot)
    for flag, path in outputs.items():
        if not path.parent.is_dir():
            raise InputError(f"{path}: cannot be written, no folder {str(path.parent)!r} "
                             f"({flag})")
        if path.is_dir():
            raise InputError(f"{path}: is a folder; {flag} names a file")
        _check_writable(path.parent, flag)
    if args.plots:
        folder = Path(args.plots)
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder}: is a file, not a folder (--plots)")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{folder}: cannot be made a folder ({exc.strerror or exc}) "
                             "(--plots)") from None
        _check_writable(folder, "--plots")


def _check_finite(samples, X: np.ndarray) -> None:
    """Standardised features must be finite float32 numbers: values as large as 1e308 are
    numbers in the file, but their mean overflows and float32 cannot hold them."""
    bad = np.flatnonzero(~np.isfinite(X).all(axis=0))
    if bad.size:
        columns = ", ".join(str(i + 3) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise InputError(f"{samples.path}: column {columns}: the features are too large to "
                         "standardise in float32 (their mean or spread overflows); rescale "
                         "them before training")


class _StopWhenNotFinite:
    """Ends training with an error at the first batch whose loss is not a finite number, or
    the first epoch whose validation loss is not: a model of NaN is never saved."""

    def on_batch_end(self, batch: int, logs: dict) -> None:
        if not math.isfinite(logs["loss"]):
            raise InputError(f"training stopped at epoch {logs['epoch'] + 1}, batch "
                             f"{batch + 1}: the loss is {logs['loss']}, not a finite number "
                             "(a lower --learning_rate may help); no model was saved")

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if not math.isfinite(logs.get("val_loss", 0.0)):
            raise InputError(f"training stopped at epoch {epoch + 1}: the validation loss is "
                             f"{logs['val_loss']}, not a finite number; no model was saved")


def cmd_train(args: argparse.Namespace) -> int:
    import fusion
    from fusion import nn
    from fusion.data import DataLoader, StandardScaler, TensorDataset
    from fusion.train import EarlyStopping, fit

    from .model import build_network, logits_of, make_optimizer, save_model

    backend = _select_backend(args.backend)
    compared = {Path(p).stem: _read_history(p) for p in args.compare}
    _check_destinations(args)
    train, valid = read_samples(args.train), read_samples(args.valid)
    if len(set(train.y.tolist())) < 2:
        raise InputError(f"{train.path}: holds only {CLASSES[train.y[0]]} samples; training "
                         "needs both diagnoses")
    activations = args.activation * len(args.layer) if len(args.activation) == 1 \
        else args.activation

    print(f"x_train shape : {train.X.shape}")
    print(f"x_valid shape : {valid.X.shape}")
    # statistics of the training rows only: the validation rows must stay unseen
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked just below
        scaler = StandardScaler().fit(train.X)
        X_train = scaler.transform(train.X).astype(np.float32)
        X_valid = scaler.transform(valid.X).astype(np.float32)
    _check_finite(train, X_train)
    _check_finite(valid, X_valid)

    fusion.manual_seed(args.seed)
    model = build_network(args.layer, activations, args.init)
    network = logits_of(model)
    train_loader = DataLoader(TensorDataset(X_train, train.y), batch_size=args.batch_size,
                              shuffle=True, seed=args.seed)
    valid_loader = DataLoader(TensorDataset(X_valid, valid.y), batch_size=len(valid))
    lines = _EpochLines(args.epochs)
    callbacks: list = [_StopWhenNotFinite(), lines]
    stopper = None
    if args.patience:
        stopper = EarlyStopping("val_loss", patience=args.patience, restore_best_weights=True)
        callbacks.append(stopper)
    optimizer = make_optimizer(args.optimizer, network.parameters(), args.learning_rate)
    started = time.perf_counter()
    history = fit(network, nn.CrossEntropyLoss(), optimizer, train_loader, valid_loader,
                  epochs=args.epochs, metrics=("accuracy",), callbacks=callbacks,
                  verbose=False, jit=args.jit)
    seconds = time.perf_counter() - started

    # the figures of the weights kept, measured on the saved model with the subject's formula
    from .model import binary_cross_entropy

    p_valid = _probabilities(model, X_valid)
    val_loss = binary_cross_entropy(valid.y, p_valid)
    val_acc = float(np.mean((p_valid > 0.5) == (valid.y == 1)))
    best = stopper.best_epoch if stopper is not None else len(history)
    per_epoch = float(np.mean(lines.seconds))
    settings = {
        "layer": args.layer, "activation": activations, "init": args.init,
        "epochs": args.epochs, "epochs_run": len(history), "best_epoch": best,
        "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "optimizer": args.optimizer, "loss": args.loss, "patience": args.patience,
        "seed": args.seed, "backend": backend, "train": train.path, "valid": valid.path,
        "val_loss": val_loss, "val_accuracy": val_acc, "seconds_per_epoch": per_epoch,
    }
    saved = save_model(model, scaler, args.model, settings)
    history_json = Path(args.history)
    history_csv = history_json.with_suffix(".csv")
    try:
        history.to_json(history_json)
        history.to_csv(history_csv)
    except OSError as exc:
        raise InputError(f"{args.history}: cannot be written ({exc.strerror or exc})") from None

    if stopper is not None and stopper.stopped_epoch:
        print(f"early stopping: no lower val_loss for {args.patience} epochs; weights of "
              f"epoch {best} restored")
    elif best != len(history):
        print(f"weights of epoch {best} restored (lowest val_loss)")
    print(f"validation: binary cross-entropy {val_loss:.4f}, accuracy {val_acc:.4f} "
          f"(epoch {best})")
    print(f"time: {seconds:.1f}s for {len(history)} epochs, {per_epoch * 1000:.0f} ms per "
          f"epoch on the {backend} backend")
    print(f"> saving model '{saved}' to disk...")
    print(f"> history written to {history_json} and {history_csv}")
    if not args.no_plot:
        sizes = "-".join(str(n) for n in [FEATURES, *args.layer, len(CLASSES)])
        title = (f"MLP {sizes}, {'/'.join(sorted(set(activations)))}, {args.optimizer} "
                 f"lr {args.learning_rate:g}, batch {args.batch_size}: val loss {val_loss:.4f},"
                 f" val acc {val_acc:.4f}")
        label = history_json.stem if history_json.stem not in compared else "this run"
        runs = {**compared, label: history}
        draw_curves(runs if compared else history, args.plot, title, best_epoch=best)
        print(f"> learning curves drawn in {args.plot}")
    if args.plots:
        from fusion.viz.plots import save_run_figures

        try:
            written = save_run_figures(
                # the learning curves are drawn once, above (--plot)
                args.plots, history=history if args.no_plot else None, best_epoch=best,
                y_true=valid.y, y_pred=(p_valid > 0.5).astype(np.int64),
                class_names=list(CLASSES), x=train.X, y=train.y,
                feature_names=[f"feature {i + 1}" for i in range(FEATURES)], model=model,
                input_shape=(1, FEATURES))
        except OSError as exc:
            raise InputError(f"{args.plots}: cannot be written ({exc.strerror or exc}) "
                             "(--plots)") from None
        print(f"> {len(written)} pictures written in {args.plots}")
    return 0


# --- predict and plot --------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    from fusion.metrics import confusion_matrix, f1, format_confusion_matrix, precision, recall

    from .model import binary_cross_entropy, load_model

    backend = _select_backend(args.backend)
    model, scaler, _ = load_model(args.model, backend)
    samples = read_samples(args.data)
    p = _probabilities(model, scaler.transform(samples.X))
    predicted = (p > 0.5).astype(np.int64)
    truth = samples.y
    loss = binary_cross_entropy(truth, p)
    matrix = confusion_matrix(truth, predicted, num_classes=len(CLASSES))
    prec = precision(truth, predicted, pos_label=1)
    rec = recall(truth, predicted, pos_label=1)
    f1_score = f1(truth, predicted, pos_label=1)

    print(f"{samples.path}: {len(samples)} samples ({samples.counts()})")
    print(f"binary cross-entropy : {loss:.4f}")
    print(f"accuracy             : {float(np.mean(predicted == truth)):.4f}")
    print(f"precision (M)        : {prec:.4f}")
    print(f"recall (M)           : {rec:.4f}")
    print(f"F1 (M)               : {f1_score:.4f}")
    print("confusion matrix (rows: true diagnosis, columns: predicted):")
    print(format_confusion_matrix(matrix, labels=CLASSES))
    if args.output:
        rows = [["id", "predicted", "p_malignant", "diagnosis"]]
        rows += [[i, CLASSES[k], f"{q:.6f}", CLASSES[t]]
                 for i, k, q, t in zip(samples.ids, predicted, p, truth, strict=True)]
        write_rows(args.output, rows)
        print(f"> predictions written to {args.output}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    labels = args.labels or [Path(p).stem for p in args.histories]
    if len(labels) != len(args.histories):
        raise InputError(f"--labels: {len(labels)} labels for {len(args.histories)} histories")
    runs = {label: _read_history(path) for label, path in zip(labels, args.histories,
                                                               strict=True)}
    if len(runs) != len(labels):
        raise InputError("--labels: two runs have the same label; give --labels")
    draw_curves(runs, args.output)
    print(f"> learning curves of {len(runs)} runs drawn in {args.output}")
    return 0


COMMANDS = {"dataset": cmd_dataset, "split": cmd_split, "train": cmd_train,
            "predict": cmd_predict, "plot": cmd_plot}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fusion-mlp`` and ``python -m fusion.examples.mlp``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "check"):
        args.check(args.parser, args)
    try:
        return COMMANDS[args.command](args)
    except InputError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except ImportError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
