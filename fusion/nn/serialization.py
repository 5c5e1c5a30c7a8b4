"""Saving and loading models: weights in the safetensors format, the architecture as JSON.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian bytes. Reading it runs no
code (unlike pickle), so a file from anywhere is safe to open. Every file is checked whole
before anything is loaded: a truncated or corrupt file raises
:class:`FusionSerializationError` naming the file, never a crash or a partial load. Only a
regular file is read (a FIFO or a device is refused, not waited on or read forever), the
header is at most :data:`MAX_HEADER_BYTES`, JSON nests at most
:data:`fusion.files.MAX_JSON_DEPTH` levels and Sequential models :data:`MAX_MODULE_DEPTH`.
Files are written once and atomically, with the permissions of any new file.

:func:`save` also writes, in the header's ``__metadata__``, a JSON description of the model
(a :class:`Sequential` of built-in layers and their constructor arguments), which
:func:`load` rebuilds in a fresh process. Custom modules save their weights with
:func:`save_state_dict` and rebuild themselves before :func:`load_state_dict`.

The files are plain safetensors: the ``safetensors`` package and other frameworks read them.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import struct
from collections.abc import Mapping

import numpy as np

from ..core.backend import Backend, get_backend, use_backend
from ..core.dtypes import bool_, float32, float64, int32, int64
from ..core.tensor import Tensor
from ..files import MAX_JSON_DEPTH, NotARegularFileError, atomic_write, open_regular, parse_json
from . import activation, attention, conv, init, layers, loss
from .module import Module, Sequential, StateDictError

#: The largest header we read, as the format's reference implementation does (100 MB).
MAX_HEADER_BYTES = 100_000_000
#: How deeply Sequential models may nest in a saved architecture (JSON nests two levels per
#: Sequential, well within :data:`fusion.files.MAX_JSON_DEPTH`).
MAX_MODULE_DEPTH = 32
FORMAT = "fusion"
ARCHITECTURE_KEY = "fusion.architecture"
ARCHITECTURE_VERSION = 1

# safetensors dtype -> (numpy dtype on disk, Fusion dtype it loads as). Types Fusion lacks
# are widened without loss; bfloat16 is handled apart (numpy has no such type).
_READ_DTYPES = {
    "BOOL": (np.dtype("bool"), bool_),
    "U8": (np.dtype("u1"), int32),
    "I8": (np.dtype("i1"), int32),
    "U16": (np.dtype("<u2"), int32),
    "I16": (np.dtype("<i2"), int32),
    "I32": (np.dtype("<i4"), int32),
    "U32": (np.dtype("<u4"), int64),
    "I64": (np.dtype("<i8"), int64),
    "F16": (np.dtype("<f2"), float32),
    "BF16": (np.dtype("<u2"), float32),
    "F32": (np.dtype("<f4"), float32),
    "F64": (np.dtype("<f8"), float64),
}
_WRITE_DTYPES = {bool_: "BOOL", int32: "I32", int64: "I64", float32: "F32", float64: "F64"}

#: The layers :func:`load` may build, by name; nothing else is ever constructed from a file.
LAYERS: dict[str, type[Module]] = {
    cls.__name__: cls for cls in (
        Sequential, layers.Linear, layers.Identity, layers.Flatten, layers.Dropout,
        layers.BatchNorm1d, layers.BatchNorm2d, layers.LayerNorm, layers.Embedding,
        layers.Unflatten, conv.Conv1d, conv.Conv2d, conv.ConvTranspose2d, conv.MaxPool2d,
        conv.AvgPool2d, attention.MultiheadAttention, activation.ReLU, activation.LeakyReLU,
        activation.Sigmoid,
        activation.Tanh, activation.GELU, activation.Softmax, activation.LogSoftmax,
        loss.CrossEntropyLoss, loss.NLLLoss, loss.BCELoss, loss.BCEWithLogitsLoss, loss.MSELoss,
    )
}


class FusionSerializationError(ValueError):
    """A model or weights file cannot be written, read or loaded; the message names it."""


def _fail(path, problem: str) -> FusionSerializationError:
    return FusionSerializationError(f"{os.fspath(path)!r}: {problem}")


# --- the safetensors format --------------------------------------------------------------------
def write_safetensors(path, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write numpy arrays to ``path`` in the safetensors format, atomically (a crash leaves
    the old file or none, never half of one).

    >>> write_safetensors("w.safetensors", {"w": np.zeros((2, 3), np.float32)})
    """
    header: dict = {}
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise _fail(path, f"metadata keys and values must be strings (bad: {bad})")
        header["__metadata__"] = dict(metadata)
    arrays, offset = [], 0
    for name, array in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise _fail(path, f"invalid tensor name {name!r}")
        array = np.asarray(array)
        code = _WRITE_DTYPES.get(_fusion_dtype(array.dtype))
        if code is None:
            raise _fail(path, f"tensor {name!r} has dtype {array.dtype}, which is not saved")
        array = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        arrays.append(array)
        offset += array.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    with atomic_write(path, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for array in arrays:
            out.write(array.tobytes())


def _fusion_dtype(npd: np.dtype):
    kinds = {"b": bool_, "f4": float32, "f8": float64, "i4": int32, "i8": int64}
    return kinds.get("b" if npd.kind == "b" else f"{npd.kind}{npd.itemsize}")


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file whole and check it: ``(name -> numpy array, metadata)``.

    Raises :class:`FusionSerializationError` naming the file if it is missing, truncated,
    padded with junk or inconsistent in any way.

    >>> arrays, metadata = read_safetensors("w.safetensors")
    """
    try:
        with open_regular(path) as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise _fail(path, f"is not a safetensors file: {len(raw)} bytes, too short "
                                  "for a header")
            (size,) = struct.unpack("<Q", raw)
            if size > MAX_HEADER_BYTES:
                raise _fail(path, f"is not a safetensors file: header of {size} bytes claimed "
                                  f"(at most {MAX_HEADER_BYTES} are read)")
            length = os.fstat(f.fileno()).st_size - 8
            if size > length:
                raise _fail(path, f"is truncated: the header needs {size} bytes, the file has "
                                  f"{length} after the length")
            raw = f.read()  # the header and the data
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except NotARegularFileError as exc:
        raise _fail(path, exc.strerror) from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        header = parse_json(raw[:size].decode("utf-8"), MAX_JSON_DEPTH)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(path, f"has a corrupt header ({exc})") from None
    if not isinstance(header, dict):
        raise _fail(path, "has a corrupt header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise _fail(path, "has corrupt metadata (expected a map of strings to strings)")
    data = memoryview(raw)[size:]
    entries = []
    for name, info in header.items():
        entries.append((name, *_check_entry(path, name, info)))
    # the byte ranges must tile the data exactly, in order of their offsets
    position = 0
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin != position:
            raise _fail(path, f"is corrupt: tensor {name!r} starts at byte {begin}, "
                              f"expected {position} (overlap or gap)")
        position = end
    if position != len(data):
        problem = "is truncated" if position > len(data) else "is corrupt"
        raise _fail(path, f"{problem}: the tensors need {position} bytes of data, the file "
                          f"has {len(data)}")
    arrays = {}
    for name, code, shape, begin, end in entries:
        on_disk, dtype = _READ_DTYPES[code]
        array = np.frombuffer(data[begin:end], dtype=on_disk).reshape(shape)
        if code == "BF16":  # the high half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        arrays[name] = array.astype(dtype.np)  # a native, aligned, writable copy
    return arrays, metadata


def _check_entry(path, name: str, info) -> tuple[str, tuple[int, ...], int, int]:
    if not isinstance(info, dict):
        raise _fail(path, f"has a corrupt header entry for {name!r}")
    code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if code not in _READ_DTYPES:
        raise _fail(path, f"tensor {name!r} has dtype {code!r}, which Fusion cannot read "
                          f"(readable: {', '.join(_READ_DTYPES)})")
    if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise _fail(path, f"tensor {name!r} has a corrupt shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise _fail(path, f"tensor {name!r} has corrupt data offsets {offsets!r}")
    begin, end = offsets
    expected = math.prod(shape) * _READ_DTYPES[code][0].itemsize
    if end - begin != expected:
        raise _fail(path, f"tensor {name!r} of shape {tuple(shape)} and dtype {code} needs "
                          f"{expected} bytes, the header gives it {end - begin}")
    return code, tuple(shape), begin, end


# --- state dicts -------------------------------------------------------------------------------
def save_state_dict(state: Module | Mapping[str, Tensor | np.ndarray], path,
                    metadata: Mapping[str, str] | None = None) -> None:
    """Save a module's ``state_dict()`` (or a mapping of names to tensors) to ``path``.

    >>> save_state_dict(model, "weights.safetensors")
    >>> model.load_state_dict(load_state_dict("weights.safetensors"))
    """
    if isinstance(state, Module):
        state = state.state_dict()
    arrays = {}
    for name, value in state.items():
        arrays[name] = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    write_safetensors(path, arrays, {"format": FORMAT, **(metadata or {})})


def load_state_dict(path, backend: str | Backend | None = None) -> dict[str, Tensor]:
    """Read the tensors of a safetensors file, by name, onto ``backend`` (default: the
    current one). Pass the result to :meth:`Module.load_state_dict`.

    >>> model.load_state_dict(load_state_dict("weights.safetensors"))
    """
    arrays, _ = read_safetensors(path)
    target = get_backend(backend)
    return {name: Tensor(array, backend=target) for name, array in arrays.items()}


# --- whole models ------------------------------------------------------------------------------
def _describe(module: Module, where: str, depth: int = 0) -> dict:
    kind = type(module).__name__
    if LAYERS.get(kind) is not type(module):
        raise FusionSerializationError(
            f"cannot save {kind} at {where!r}: fusion.save rebuilds Sequential models of the "
            f"built-in layers ({', '.join(sorted(LAYERS))}); save other modules' weights with "
            "fusion.nn.save_state_dict and rebuild them in code")
    if isinstance(module, Sequential):
        if depth >= MAX_MODULE_DEPTH:
            raise FusionSerializationError(
                f"cannot save the Sequential at {where!r}: Sequential models nest at most "
                f"{MAX_MODULE_DEPTH} deep in a saved model")
        return {"type": kind, "layers": [
            {"name": name, **_describe(child, f"{where}.{name}" if where else name, depth + 1)}
            for name, child in module._modules.items()]}
    return {"type": kind, "config": module.get_config()}


def _build(description, path, where: str, depth: int = 0) -> Module:
    if depth > MAX_MODULE_DEPTH:
        raise _fail(path, f"has an architecture nested deeper than {MAX_MODULE_DEPTH} "
                          f"Sequential models (at {where!r})")
    if not isinstance(description, dict) or not isinstance(description.get("type"), str):
        raise _fail(path, f"has a corrupt architecture at {where or 'the top'!r}: expected an "
                          "object with a 'type'")
    kind = description["type"]
    cls = LAYERS.get(kind)
    if cls is None:
        raise _fail(path, f"names an unknown layer {kind!r} at {where or 'the top'!r}; known "
                          f"layers: {', '.join(sorted(LAYERS))}")
    if cls is Sequential:
        items = description.get("layers")
        if not isinstance(items, list):
            raise _fail(path, f"has a corrupt architecture: Sequential at {where!r} has no "
                              "list of layers")
        children = {}
        for i, item in enumerate(items):
            name = item.get("name", str(i)) if isinstance(item, dict) else str(i)
            if not isinstance(name, str) or not name or "." in name or name in children:
                raise _fail(path, f"has a corrupt architecture: bad layer name {name!r}")
            children[name] = _build(item, path, f"{where}.{name}" if where else name,
                                    depth + 1)
        return Sequential(children)
    config = description.get("config", {})
    if not isinstance(config, dict):
        raise _fail(path, f"has a corrupt configuration for {kind} at {where!r}")
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "backend"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise _fail(path, f"gives {kind} at {where!r} unknown arguments {unknown}")
    try:
        return cls(**config)
    except (TypeError, ValueError, KeyError) as exc:
        raise _fail(path, f"has a bad configuration for {kind} at {where!r}: {exc}") from None


def save(model: Module, path, metadata: Mapping[str, str] | None = None) -> None:
    """Save a model, architecture and weights, to one safetensors file at ``path``.

    The model must be a :class:`Sequential` of built-in layers (or one built-in layer),
    Sequential models nested at most :data:`MAX_MODULE_DEPTH` deep; the architecture goes into
    the file's metadata as JSON, the weights and buffers as tensors. ``metadata`` adds entries
    of your own (strings to strings) to the same file; the file is written once, atomically.

    >>> model = Sequential(Linear(4, 8), ReLU(), Linear(8, 3))
    >>> fusion.save(model, "model.safetensors")
    >>> same = fusion.load("model.safetensors")
    """
    if not isinstance(model, Module):
        raise TypeError(f"fusion.save saves a Module, not {type(model).__name__}; "
                        "use fusion.nn.save_state_dict for a mapping of tensors")
    reserved = {"format", ARCHITECTURE_KEY} & set(metadata or {})
    if reserved:
        raise ValueError(f"fusion.save writes the metadata {sorted(reserved)} itself; choose "
                         "other keys")
    architecture = {"version": ARCHITECTURE_VERSION, "training": model.training,
                    "model": _describe(model, "")}
    save_state_dict(model, path, {**(metadata or {}),
                                  ARCHITECTURE_KEY: json.dumps(architecture)})


def load(path, backend: str | Backend | None = None) -> Module:
    """Rebuild a model written by :func:`save`, on ``backend`` (default: the current one).

    Loading draws no random numbers from Fusion's generator, and checks the whole file
    first: an unknown layer, a corrupt or truncated file, or weights that do not fit the
    architecture raise :class:`FusionSerializationError` naming the file.

    >>> model = fusion.load("model.safetensors")
    >>> prediction = model(x)
    """
    arrays, metadata = read_safetensors(path)
    text = metadata.get(ARCHITECTURE_KEY)
    if text is None:
        raise _fail(path, "holds weights but no architecture (it was not written by "
                          "fusion.save); build the model in code and use "
                          "fusion.nn.load_state_dict")
    try:
        architecture = parse_json(text, MAX_JSON_DEPTH)
    except ValueError as exc:
        raise _fail(path, f"has a corrupt architecture ({exc})") from None
    if not isinstance(architecture, dict) or "model" not in architecture:
        raise _fail(path, "has a corrupt architecture (no 'model')")
    version = architecture.get("version")
    if version != ARCHITECTURE_VERSION:
        raise _fail(path, f"has architecture version {version!r}; this Fusion reads version "
                          f"{ARCHITECTURE_VERSION}")
    target = get_backend(backend)
    # no initialisation: the weights are replaced below, the user's random stream must not
    # move, and a layer the file claims is huge costs nothing before its shape is refused
    with use_backend(target.name), init.skip_init():
        model = _build(architecture["model"], path, "")
    try:
        model.load_state_dict({name: Tensor(a, backend=target) for name, a in arrays.items()})
    except StateDictError as exc:
        raise _fail(path, f"does not fit its architecture: {exc}") from None
    model.train(bool(architecture.get("training", False)))
    return model
