"""The perceptron: layers, initialisations, optimizers, the subject's loss, save and load.

The network is a :class:`fusion.nn.Sequential` of Linear layers with an activation after each
hidden one and a softmax over the two classes at the end, so a saved model gives probabilities
and :func:`fusion.load` rebuilds it anywhere. Training calls the same layers without the final
softmax (they are shared, not copied) and uses the cross-entropy of the logits: for two classes
that is exactly the binary cross-entropy of p = P(malignant), computed through log-softmax so
that no log(0) can occur.

The scaler that standardised the training features travels inside the model file, in the
safetensors metadata under ``fusion.mlp``, with the settings of the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import fusion
from fusion import nn, optim
from fusion.data import StandardScaler
from fusion.files import parse_json
from fusion.nn.serialization import FusionSerializationError, read_safetensors

from .data import CLASSES, FEATURES, InputError

METADATA_KEY = "fusion.mlp"
METADATA_VERSION = 1
#: log(0) guard of the subject's formula: p is kept in [EPSILON, 1 - EPSILON] (in float64:
#: in float32, 1 - 1e-15 rounds to 1 and the guard would do nothing).
EPSILON = 1e-15

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU,
                                           "tanh": nn.Tanh}


#: Weight initialisations by the subject's (Keras's) names; biases always start at 0.
INITS: dict[str, Callable[[fusion.Tensor], object]] = {
    "heUniform": nn.init.he_uniform_,
    "heNormal": nn.init.he_normal_,
    "xavierUniform": nn.init.xavier_uniform_,
    "xavierNormal": nn.init.xavier_normal_,
    "glorotUniform": nn.init.xavier_uniform_,
    "glorotNormal": nn.init.xavier_normal_,
    # LeCun: variance 1 / fan_in, He's formula with the gain of a linear layer
    "lecunUniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="linear"),
    "lecunNormal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear"),
    # Keras's RandomUniform and RandomNormal defaults
    "randomUniform": lambda w: nn.init.uniform_(w, -0.05, 0.05),
    "randomNormal": lambda w: nn.init.normal_(w, 0.0, 0.05),
}

#: Optimizers by name. ``gd`` is the plain update p -= lr * g (on the full training set when
#: the batch size is at least its length); ``momentum`` and ``nesterov`` use a factor of 0.9.
OPTIMIZERS: dict[str, Callable[[list, float], optim.Optimizer]] = {
    "gd": lambda params, lr: optim.GD(params, lr=lr),
    "sgd": lambda params, lr: optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
    "nesterov": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda params, lr: optim.RMSprop(params, lr=lr),
    "adam": lambda params, lr: optim.Adam(params, lr=lr),
}

#: Loss names: for a softmax over two classes the categorical cross-entropy is the binary one.
LOSSES = ("binaryCrossentropy", "categoricalCrossentropy")


def build_network(hidden: Sequence[int], activations: Sequence[str], init: str,
                  inputs: int = FEATURES) -> nn.Sequential:
    """Linear layers of sizes ``hidden``, each followed by its activation, then a Linear layer
    to two scores and a softmax. Weights drawn with ``init`` from Fusion's generator.

    >>> model = build_network([24, 24], ["sigmoid", "sigmoid"], "xavierUniform")
    >>> model(fusion.zeros(1, 30)).shape
    (1, 2)
    """
    fill = INITS[init]
    layers: list[nn.Module] = []
    for size, activation in zip(hidden, activations, strict=True):
        layers += [nn.Linear(inputs, size), ACTIVATIONS[activation]()]
        inputs = size
    layers += [nn.Linear(inputs, len(CLASSES)), nn.Softmax(axis=-1)]
    for layer in layers:
        if isinstance(layer, nn.Linear):
            fill(layer.weight)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


def logits_of(model: nn.Sequential) -> nn.Sequential:
    """The same layers without the final softmax: what training and its loss see."""
    return model[:-1]


def make_optimizer(name: str, params, learning_rate: float) -> optim.Optimizer:
    return OPTIMIZERS[name](list(params), learning_rate)


def binary_cross_entropy(y_true: np.ndarray, p_positive: np.ndarray) -> float:
    """The subject's E = -1/N sum [y log p + (1 - y) log(1 - p)], with p clamped to
    [1e-15, 1 - 1e-15] so that a confident mistake costs about 34.5, not infinity.

    >>> round(binary_cross_entropy(np.array([1, 0]), np.array([0.9, 0.2])), 4)
    0.1643
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(p_positive, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def model_path(path: str | os.PathLike) -> Path:
    """Where a model named ``path`` lives: ``saved_model`` means ``saved_model.safetensors``
    unless a file of the bare name exists, so both spellings of the subject work."""
    path = Path(path)
    if path.suffix or path.exists():
        return path
    return path.with_name(path.name + ".safetensors")


def save_model(model: nn.Sequential, scaler: StandardScaler, path: str | os.PathLike,
               settings: dict) -> Path:
    """Write the model (topology and weights, readable by :func:`fusion.load`) with the
    scaler's statistics and the run's ``settings`` in its metadata, in one atomic write (an
    interrupted save leaves the previous file as it was). Returns the path written."""
    target = model_path(path)
    extra = {"version": METADATA_VERSION, "classes": list(CLASSES), "features": FEATURES,
             "scaler": scaler.state_dict(), "settings": settings}
    try:
        # fusion.save owns the format of the architecture; this program adds beside it what
        # predict needs
        fusion.save(model, target, metadata={METADATA_KEY: json.dumps(extra)})
    except OSError as exc:
        raise InputError(f"{target}: cannot be written ({exc.strerror or exc})") from None
    return target


def layer_widths(model: nn.Module) -> tuple[int, int] | None:
    """``(features read, scores given)``: the input size of the model's first Linear layer and
    the output size of its last; None without a Linear layer."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return (linear[0].in_features, linear[-1].out_features) if linear else None


def load_model(path: str | os.PathLike, backend: str | None = None
               ) -> tuple[nn.Module, StandardScaler, dict]:
    """The model, its scaler and the metadata written by :func:`save_model`."""
    target = model_path(path)
    if not target.exists():
        raise InputError(f"{path}: no such model file")
    try:
        _, metadata = read_safetensors(target)
        model = fusion.load(target, backend=backend)
    except FusionSerializationError as exc:
        raise InputError(str(exc)) from None
    text = metadata.get(METADATA_KEY)
    if text is None:
        raise InputError(f"{target}: is a Fusion model without the scaler of fusion-mlp; "
                         "train it with fusion-mlp train")
    try:
        extra = parse_json(text)
        scaler = StandardScaler().load_state_dict(extra["scaler"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{target}: has corrupt fusion-mlp metadata ({exc})") from None
    if extra.get("version") != METADATA_VERSION or len(scaler.mean_) != FEATURES:
        raise InputError(f"{target}: was written by another version of fusion-mlp")
    widths = layer_widths(model)
    if widths is None:
        raise InputError(f"{target}: the model has no Linear layer; fusion-mlp's models "
                         f"read {FEATURES} features")
    if widths[0] != FEATURES:
        raise InputError(f"{target}: the model reads {widths[0]} features per sample; "
                         f"fusion-mlp's data has {FEATURES}")
    if widths[1] != len(CLASSES):
        raise InputError(f"{target}: the model gives {widths[1]} scores per sample; "
                         f"fusion-mlp's models give {len(CLASSES)} ({' and '.join(CLASSES)})")
    return model, scaler, extra
