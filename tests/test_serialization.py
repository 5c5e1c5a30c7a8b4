"""Save and load: safetensors files, whole models rebuilt in a fresh process bit for bit, and
a clear error (naming the file) for every kind of bad file."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import fusion
import fusion.nn as nn
from fusion.nn import FusionSerializationError, read_safetensors, write_safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def this_fusion() -> dict:
    """The environment of a subprocess that imports this checkout's Fusion."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture
def backend(request):
    """The conformance plugin's ``backend``, also made the current backend for the test."""
    with fusion.use_backend(request.param):
        yield request.param


def make_model(dtype=None) -> nn.Sequential:
    """Every built-in layer, trained a little so that BatchNorm's statistics are not fresh."""
    fusion.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(12, 32, dtype=dtype),
        nn.BatchNorm1d(32, momentum=0.2, dtype=dtype),
        nn.GELU("none"),
        nn.Dropout(0.25),
        nn.Linear(32, 16, dtype=dtype),
        nn.LeakyReLU(0.1),
        nn.Sequential(nn.Linear(16, 8, bias=False, dtype=dtype), nn.Tanh(), nn.Identity()),
        nn.Linear(8, 4, dtype=dtype),
        nn.Sigmoid(),
        nn.ReLU(),
        nn.Softmax(),
        nn.LogSoftmax(axis=-1),
    )
    opt = fusion.optim.Adam(model.parameters(), lr=0.01)
    x = fusion.randn(16, 3, 4, dtype=dtype)
    y = fusion.randint(0, 4, 16)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.nll_loss(model(x), y).backward()
        opt.step()
    return model.eval()


def inputs(dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((9, 3, 4)).astype(dtype)


# --- whole models ------------------------------------------------------------------------------
def test_round_trip_rebuilds_the_same_model(backend, tmp_path):
    model = make_model()
    path = tmp_path / "model.safetensors"
    fusion.save(model, path)
    loaded = fusion.load(path)
    assert repr(loaded) == repr(model)
    assert not loaded.training
    assert list(loaded.state_dict()) == list(model.state_dict())
    for name, value in model.state_dict().items():
        got = loaded.state_dict()[name]
        assert got.dtype is value.dtype and got.backend == backend, name
        np.testing.assert_array_equal(got.numpy(), value.numpy(), err_msg=name)
    x = fusion.Tensor(inputs())
    assert model(x).numpy().tobytes() == loaded(x).numpy().tobytes()


def test_training_mode_and_float64_survive(tmp_path):
    model = make_model(dtype=fusion.float64).train()
    fusion.save(model, tmp_path / "m.safetensors")
    loaded = fusion.load(tmp_path / "m.safetensors")
    assert loaded.training and loaded[1].weight.dtype is fusion.float64
    loaded.eval()
    model.eval()
    x = fusion.Tensor(inputs(np.float64))
    assert model(x).numpy().tobytes() == loaded(x).numpy().tobytes()


def test_a_single_layer_saves_too(tmp_path):
    layer = nn.Linear(3, 2)
    fusion.save(layer, tmp_path / "l.safetensors")
    loaded = fusion.load(tmp_path / "l.safetensors")
    assert isinstance(loaded, nn.Linear)
    np.testing.assert_array_equal(loaded.weight.numpy(), layer.weight.numpy())


def test_loading_draws_no_random_numbers(tmp_path):
    fusion.save(make_model(), tmp_path / "m.safetensors")
    fusion.manual_seed(123)
    expected = fusion.rand(5).numpy()
    fusion.manual_seed(123)
    fusion.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(fusion.rand(5).numpy(), expected)


_PREDICT = """
import sys
import numpy as np
import fusion
model = fusion.load(sys.argv[1], backend=sys.argv[2])
with fusion.no_grad():
    out = model(fusion.Tensor(np.load(sys.argv[3]), backend=sys.argv[2]))
np.save(sys.argv[4], out.numpy())
"""


def test_a_fresh_process_predicts_the_same_numbers_bit_for_bit(backend, tmp_path):
    model = make_model()
    x = inputs()
    with fusion.no_grad():
        expected = model(fusion.Tensor(x)).numpy()
    fusion.save(model, tmp_path / "model.safetensors")
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, "-c", _PREDICT, str(tmp_path / "model.safetensors"),
                    backend, str(tmp_path / "x.npy"), str(tmp_path / "out.npy")],
                   check=True, timeout=300, capture_output=True)
    got = np.load(tmp_path / "out.npy")
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


def test_only_built_in_layers_save_as_a_model(tmp_path):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 2)

        def forward(self, x):
            return self.layer(x)

    class MySequential(nn.Sequential):
        pass

    with pytest.raises(FusionSerializationError, match=r"cannot save Custom at '1'.*"
                                                        r"save_state_dict"):
        fusion.save(nn.Sequential(nn.ReLU(), Custom()), tmp_path / "x.safetensors")
    with pytest.raises(FusionSerializationError, match="MySequential"):
        fusion.save(MySequential(nn.ReLU()), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="saves a Module"):
        fusion.save({"w": fusion.ones(1)}, tmp_path / "x.safetensors")
    assert not os.listdir(tmp_path)  # nothing half-written


# --- state dicts of custom modules -------------------------------------------------------------
class TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        self.left = nn.Linear(3, 2)
        self.right = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))

    def forward(self, x):
        return self.left(x) + self.right(x)


def test_state_dict_helpers_round_trip_a_custom_module(backend, tmp_path):
    fusion.manual_seed(0)
    model = TwoTowers()
    model(fusion.randn(5, 3))  # moves the running statistics
    path = tmp_path / "weights.safetensors"
    nn.save_state_dict(model, path, metadata={"note": "two towers"})
    state = nn.load_state_dict(path)
    assert all(t.backend == backend for t in state.values())
    assert state["right.1.num_batches_tracked"].dtype is fusion.int64
    fusion.manual_seed(1)
    other = TwoTowers()
    other.load_state_dict(state)
    model.eval()
    other.eval()
    x = fusion.randn(4, 3)
    assert model(x).numpy().tobytes() == other(x).numpy().tobytes()
    _, metadata = read_safetensors(path)
    assert metadata == {"format": "fusion", "note": "two towers"}
    with pytest.raises(FusionSerializationError, match="no architecture.*load_state_dict"):
        fusion.load(path)


def test_state_dict_helpers_take_mappings_of_arrays(tmp_path):
    nn.save_state_dict({"a": np.arange(6, dtype=np.int32).reshape(2, 3),
                        "b": fusion.Tensor([True, False])}, tmp_path / "s.safetensors")
    state = nn.load_state_dict(tmp_path / "s.safetensors")
    assert state["a"].dtype is fusion.int32 and state["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert state["b"].dtype is fusion.bool and state["b"].tolist() == [True, False]


# --- the file format ---------------------------------------------------------------------------
def test_every_dtype_and_odd_shapes_round_trip(tmp_path):
    arrays = {
        "f32": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "f64": np.array([np.pi, -np.inf, np.nan]),
        "i32": np.array([-(2**31), 2**31 - 1], np.int32),
        "i64": np.array([[-(2**62)]], np.int64),
        "bool": np.array([True, False, True]),
        "scalar": np.float32(2.5),
        "empty": np.zeros((0, 3), np.float32),
        "strided": np.arange(20.0).reshape(4, 5)[:, ::2],
    }
    write_safetensors(tmp_path / "a.safetensors", arrays, {"k": "v"})
    got, metadata = read_safetensors(tmp_path / "a.safetensors")
    assert metadata == {"k": "v"} and list(got) == list(arrays)
    for name, array in arrays.items():
        array = np.asarray(array)
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        np.testing.assert_array_equal(got[name], array)
        assert got[name].flags.writeable and got[name].flags.c_contiguous


def test_header_layout_follows_the_format(tmp_path):
    write_safetensors(tmp_path / "a.safetensors", {"x": np.ones(3, np.float32),
                                                   "y": np.zeros((2,), np.int64)})
    raw = (tmp_path / "a.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    assert size % 8 == 0
    header = json.loads(raw[8:8 + size])
    assert header["x"] == {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}
    assert header["y"] == {"dtype": "I64", "shape": [2], "data_offsets": [12, 28]}
    assert len(raw) == 8 + size + 28
    assert np.frombuffer(raw[8 + size:8 + size + 12], "<f4").tolist() == [1.0, 1.0, 1.0]


def test_files_interoperate_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    ours = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(7, np.int64)}
    write_safetensors(tmp_path / "ours.safetensors", ours)
    theirs_view = st.load_file(str(tmp_path / "ours.safetensors"))
    for name, array in ours.items():
        np.testing.assert_array_equal(theirs_view[name], array)
    theirs = {"h": np.array([0.5, -2.0], np.float16), "u": np.array([1, 255], np.uint8),
              "d": np.array([[1.5]], np.float64)}
    st.save_file(theirs, str(tmp_path / "theirs.safetensors"), metadata={"a": "b"})
    got, metadata = read_safetensors(tmp_path / "theirs.safetensors")
    assert metadata == {"a": "b"}
    assert got["h"].dtype == np.float32 and got["h"].tolist() == [0.5, -2.0]  # widened
    assert got["u"].dtype == np.int32 and got["u"].tolist() == [1, 255]
    np.testing.assert_array_equal(got["d"], theirs["d"])


def test_bfloat16_is_read_as_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], np.float32)
    halves = (values.view(np.uint32) >> 16).astype("<u2")  # exactly representable in bf16
    write_raw(tmp_path / "b.safetensors", {"b": {"dtype": "BF16", "shape": [3],
                                                 "data_offsets": [0, 6]}}, halves.tobytes())
    got, _ = read_safetensors(tmp_path / "b.safetensors")
    np.testing.assert_array_equal(got["b"], values)


def test_writes_are_atomic_and_overwrite(tmp_path):
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"a": np.zeros(2, np.float32)})
    write_safetensors(path, {"b": np.ones(3, np.float32)})
    assert list(read_safetensors(path)[0]) == ["b"]
    assert os.listdir(tmp_path) == ["w.safetensors"]
    with pytest.raises(FusionSerializationError, match="metadata"):
        write_safetensors(path, {"a": np.zeros(1)}, {"k": 1})
    with pytest.raises(FusionSerializationError, match="dtype"):
        write_safetensors(path, {"a": np.array(["text"])})
    assert os.listdir(tmp_path) == ["w.safetensors"]
    assert list(read_safetensors(path)[0]) == ["b"]


# --- bad files ---------------------------------------------------------------------------------
def write_raw(path, header, data: bytes = b"", size: int | None = None) -> None:
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob) if size is None else size) + blob + data)


def assert_clear_error(path, match: str, loader=read_safetensors):
    with pytest.raises(FusionSerializationError, match=match) as caught:
        loader(path)
    assert str(path) in str(caught.value)  # the message names the file


def test_a_missing_file_or_a_folder(tmp_path):
    assert_clear_error(tmp_path / "nope.safetensors", "no such file", fusion.load)
    assert_clear_error(tmp_path, "folder", fusion.load)


def test_every_truncation_of_a_model_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.safetensors"
    fusion.save(make_model(), path)
    raw = path.read_bytes()
    cut_path = tmp_path / "cut.safetensors"
    cuts = sorted({0, 1, 7, 8, 9, 100, len(raw) - 1, len(raw) - 4,
                   *range(0, len(raw), max(1, len(raw) // 60))})
    for cut in cuts:
        cut_path.write_bytes(raw[:cut])
        assert_clear_error(cut_path, "truncated|too short|corrupt", fusion.load)
    cut_path.write_bytes(raw + b"\0" * 4)  # junk after the data is refused too
    assert_clear_error(cut_path, "corrupt: the tensors need", fusion.load)


A = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header, data, size, match", [
    (b"{}", b"", 2**40, "header of 1099511627776 bytes"),
    (b"{}", b"", 64, "truncated: the header needs 64 bytes"),
    (b"\xff\xfe{", b"", None, "corrupt header"),
    (b"{not json", b"", None, "corrupt header"),
    (b"[1, 2]", b"", None, "not a JSON object"),
    ({"a": {**A, "dtype": "F8_E4M3"}}, b"\0" * 8, None, "dtype 'F8_E4M3'"),
    ({"a": {**A, "shape": [-2]}}, b"\0" * 8, None, "corrupt shape"),
    ({"a": {**A, "shape": "2"}}, b"\0" * 8, None, "corrupt shape"),
    ({"a": {**A, "data_offsets": [8, 0]}}, b"\0" * 8, None, "corrupt data offsets"),
    ({"a": {**A, "data_offsets": [0, 12]}}, b"\0" * 12, None, "needs 8 bytes"),
    ({"a": A, "b": A}, b"\0" * 16, None, "overlap or gap"),
    ({"a": {**A, "data_offsets": [4, 12]}}, b"\0" * 12, None, "overlap or gap"),
    ({"a": A}, b"\0" * 4, None, "truncated: the tensors need 8 bytes"),
    ({"a": "F32"}, b"", None, "corrupt header entry"),
    ({"__metadata__": {"k": 1}}, b"", None, "corrupt metadata"),
])
def test_corrupt_files(tmp_path, header, data, size, match):
    path = tmp_path / "bad.safetensors"
    write_raw(path, header, data, size)
    assert_clear_error(path, match)
    assert_clear_error(path, match, fusion.load)


def _rewrite(path, edit_architecture=None, edit_arrays=None) -> None:
    arrays, metadata = read_safetensors(path)
    if edit_architecture is not None:
        architecture = json.loads(metadata["fusion.architecture"])
        edited = edit_architecture(architecture)
        metadata["fusion.architecture"] = edited if isinstance(edited, str) else json.dumps(
            architecture)
    if edit_arrays is not None:
        edit_arrays(arrays)
    write_safetensors(path, arrays, metadata)


def _set_layer(index, **changes):
    def edit(architecture):
        architecture["model"]["layers"][index].update(changes)
    return edit


@pytest.mark.parametrize("edit_architecture, edit_arrays, match", [
    (_set_layer(1, type="os.system"), None, "unknown layer 'os.system' at '1'; known layers"),
    (_set_layer(1, type="Evil"), None, "unknown layer 'Evil'"),
    (_set_layer(1, config={"in_features": 12, "out_features": 32, "__class__": 1}), None,
     r"unknown arguments \['__class__'\]"),
    (_set_layer(1, config={"in_features": "twelve", "out_features": 32}), None,
     "bad configuration for Linear"),
    (_set_layer(4, config={"p": 3.0}), None, "bad configuration for Dropout"),
    (_set_layer(1, config={"in_features": 12, "out_features": 33}), None,
     r"'1.weight' has shape \(32, 12\), the module expects \(33, 12\)"),
    (_set_layer(1, config={"in_features": 12, "out_features": 10**9}), None,
     r"'1.weight' has shape \(32, 12\), the module expects \(1000000000, 12\)"),
    (_set_layer(1, name="a.b"), None, "bad layer name"),
    (lambda a: "{oops", None, "corrupt architecture"),
    (lambda a: a.update(version=99), None, "architecture version 99"),
    (lambda a: a.pop("model"), None, "no 'model'"),
    (lambda a: a["model"].pop("layers"), None, "no list of layers"),
    (lambda a: a.update(model=[1]), None, "expected an object with a 'type'"),
    (None, lambda arrays: arrays.pop("5.bias"), "missing keys: '5.bias'"),
    (None, lambda arrays: arrays.update(extra=np.zeros(1, np.float32)),
     "unexpected keys: 'extra'"),
    (None, lambda arrays: arrays.update({"8.weight": np.zeros((4, 9), np.float32)}),
     r"'8.weight' has shape \(4, 9\)"),
])
def test_architectures_that_do_not_fit(tmp_path, edit_architecture, edit_arrays, match):
    path = tmp_path / "model.safetensors"
    fusion.save(make_model(), path)
    _rewrite(path, edit_architecture, edit_arrays)
    assert_clear_error(path, match, fusion.load)


# --- hostile files: deep nesting, things that are not files ------------------------------------
def nested_sequential_architecture(depth: int) -> str:
    """The architecture text of ``depth`` Sequential models, each holding the next."""
    # built as text: json.dumps itself recurses
    model = ("{" + '"type": "Sequential", "layers": [{"name": "0", ' * depth
             + '"type": "Identity", "config": {}' + "}]" * depth + "}")
    return '{"version": 1, "training": false, "model": ' + model + "}"


@pytest.mark.parametrize("depth", [10**4, 10**5])
def test_a_deeply_nested_header_is_a_clear_error_not_a_recursion_error(tmp_path, depth):
    path = tmp_path / "deep.safetensors"
    write_raw(path, b"[" * depth + b"]" * depth)
    assert_clear_error(path, f"corrupt header.*nested {depth} levels deep")
    assert_clear_error(path, f"nested {depth} levels deep", fusion.load)
    # deep inside a string is no nesting at all
    write_raw(path, {"__metadata__": {"k": "[" * depth}})
    assert read_safetensors(path)[1] == {"k": "[" * depth}


@pytest.mark.parametrize("text, match", [
    ("[" * 50_000 + "]" * 50_000, "nested 50000 levels deep"),
    (nested_sequential_architecture(5_000), "nested 10003 levels deep"),
    (nested_sequential_architecture(40), "nested deeper than 32 Sequential models"),
])
def test_a_deeply_nested_architecture_is_a_clear_error(tmp_path, text, match):
    path = tmp_path / "deep.safetensors"
    write_safetensors(path, {}, {"fusion.architecture": text})
    assert_clear_error(path, match, fusion.load)


def test_nesting_that_loads_is_the_nesting_that_saves(tmp_path):
    model = nn.Linear(2, 2)
    for _ in range(32):
        model = nn.Sequential(model)
    fusion.save(model, tmp_path / "ok.safetensors")
    assert isinstance(fusion.load(tmp_path / "ok.safetensors"), nn.Sequential)
    with pytest.raises(FusionSerializationError, match="nest at most 32 deep"):
        fusion.save(nn.Sequential(model), tmp_path / "deep.safetensors")
    assert not (tmp_path / "deep.safetensors").exists()


def test_fusion_draw_of_a_deeply_nested_model_is_one_line(tmp_path, capsys):
    from fusion.cli import main

    path = tmp_path / "deep.safetensors"
    write_safetensors(path, {}, {"fusion.architecture": nested_sequential_architecture(5_000)})
    assert main(["draw", str(path), "-o", str(tmp_path / "deep.gv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fusion draw: ") and "levels deep" in err and err.count("\n") == 1


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_before_it_is_read(tmp_path):
    for loader in (read_safetensors, fusion.load, fusion.nn.load_state_dict):
        with pytest.raises(FusionSerializationError, match="character device, not a regular"):
            loader("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    # in a subprocess with a time limit: if the load blocked on the FIFO, the test would fail,
    # not hang (nobody ever writes to this FIFO)
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    code = ("import sys, fusion\n"
            "try:\n"
            "    fusion.load(sys.argv[1])\n"
            "except fusion.nn.FusionSerializationError as error:\n"
            "    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                          text=True, timeout=60, env=this_fusion())
    assert done.returncode == 0, done.stderr
    assert str(fifo) in done.stdout and "FIFO (named pipe), not a regular file" in done.stdout


# --- writing ---------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_saved_model_gets_the_permissions_of_any_new_file(tmp_path, umask):
    previous = os.umask(umask)
    try:
        fusion.save(nn.Linear(2, 2), tmp_path / "model.safetensors")
        with open(tmp_path / "plain.txt", "w") as f:  # what the user's other files get
            f.write("x")
    finally:
        os.umask(previous)
    mode = os.stat(tmp_path / "model.safetensors").st_mode & 0o777
    assert mode == 0o666 & ~umask == os.stat(tmp_path / "plain.txt").st_mode & 0o777


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_overwriting_a_model_keeps_its_permissions(tmp_path):
    path = tmp_path / "model.safetensors"
    fusion.save(nn.Linear(2, 2), path)
    os.chmod(path, 0o640)
    fusion.save(nn.Linear(3, 3), path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert fusion.load(path).in_features == 3


def test_save_writes_extra_metadata_in_the_same_single_write(tmp_path, monkeypatch):
    import fusion.files

    opened = []
    real = fusion.files.atomic_write

    def counting(path, *args, **kwargs):
        opened.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fusion.nn.serialization, "atomic_write", counting)
    path = tmp_path / "model.safetensors"
    fusion.save(nn.Linear(2, 2), path, metadata={"mine": "1"})
    assert len(opened) == 1 and read_safetensors(path)[1]["mine"] == "1"
    with pytest.raises(ValueError, match="fusion.architecture"):
        fusion.save(nn.Linear(2, 2), path, metadata={"fusion.architecture": "{}"})


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    fusion.save(nn.Linear(2, 2), path)
    before = path.read_bytes()
    real_replace = os.replace

    def fail_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(KeyboardInterrupt):
        fusion.save(nn.Linear(5, 5), path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]
