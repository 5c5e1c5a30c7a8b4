"""Data sets: scikit-learn's bundled copies, and MNIST's IDX files written here by hand.

The IDX files are built byte by byte with ``struct`` from the format's definition, so the
reader is checked against the format, not against itself. Nothing is downloaded: the download
path fetches ``file://`` URLs of files this test wrote.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import subprocess
import sys

import numpy as np
import pytest

from fusion import datasets
from fusion.datasets import bundled
from fusion.datasets import idx as idx_module
from fusion.datasets.idx import DownloadError, IDXError, mnist, read_idx

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
              np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes: 0, 0, type code, ndim, big-endian uint32 dims, big-endian data."""
    code = TYPE_CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, gzipped: bool = False):
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


def tiny_mnist(folder, n_train=5, n_test=3, gzipped=False, names=None):
    """Four small IDX files with the standard names; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        name = (names or {}).get(name, name)
        write(folder / (name + (".gz" if gzipped else "")), idx_bytes(array), gzipped)
    return arrays


# --- bundled data sets --------------------------------------------------------------------------
def test_digits_and_breast_cancer_match_scikit_learn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.digits()
    raw = sklearn_datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X, raw.data)
    np.testing.assert_array_equal(y, raw.target)
    bunch = datasets.digits(as_bunch=True)
    assert bunch.images.shape == (1797, 8, 8) and bunch.target_names == [str(i) for i in
                                                                        range(10)]
    assert len(bunch.feature_names) == 64 and "digits" in bunch.description.lower()

    X, y = datasets.breast_cancer(dtype=np.float64)
    raw = sklearn_datasets.load_breast_cancer()
    np.testing.assert_array_equal(X, raw.data)
    assert np.bincount(y).tolist() == [212, 357]
    bunch = datasets.breast_cancer(as_bunch=True)
    assert bunch.target_names == ["malignant", "benign"] and len(bunch.feature_names) == 30
    with pytest.raises(AttributeError, match="no field 'images'"):
        _ = bunch.images


def test_a_clear_message_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what an absent package looks like
    with pytest.raises(ImportError, match=r"pip install 'fusion\[data\]'"):
        datasets.digits()
    with pytest.raises(ImportError, match="scikit-learn is not installed"):
        datasets.breast_cancer(as_bunch=True)


def test_without_the_bundled_files_scikit_learn_loads_them(monkeypatch):
    pytest.importorskip("sklearn")
    fast = datasets.digits()
    monkeypatch.setattr(bundled, "_bundled_file", lambda what, name: None)
    slow = datasets.digits()
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert datasets.breast_cancer()[0].shape == (569, 30)


def test_scikit_learn_is_not_imported_for_plain_arrays():
    code = ("import sys; from fusion import datasets; X, y = datasets.digits(); "
            "X, y = datasets.breast_cancer(); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


# --- the IDX reader -----------------------------------------------------------------------------
@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
def test_read_idx_of_every_type(tmp_path, dtype, gzipped):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = write(tmp_path / "data.idx", idx_bytes(array), gzipped)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_read_idx_big_endian_by_hand(tmp_path):
    # two int16 values 258 (0x0102) and -2 (0xfffe), written without numpy
    data = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    assert read_idx(write(tmp_path / "x", data)).tolist() == [258, -2]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "too short"),
    (bytes([0, 1, 8, 1, 0, 0, 0, 1, 5]), "bad magic number 0x00010801"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), "unknown IDX element type 0x07"),
    (bytes([0, 0, 8, 0]), "0 dimensions"),
    (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "truncated header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3]), "truncated: dimensions"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "trailing bytes"),
])
def test_corrupt_idx_files_are_clear_errors(tmp_path, data, message):
    path = write(tmp_path / "bad-idx", data)
    with pytest.raises(IDXError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_a_corrupt_or_truncated_gzip_is_a_clear_error(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((50, 28, 28), dtype=np.uint8)))
    path = write(tmp_path / "cut.gz", packed[:len(packed) // 2])
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        read_idx(path)
    damaged = bytearray(packed)
    damaged[20:30] = b"\xff" * 10
    with pytest.raises(IDXError):
        read_idx(write(tmp_path / "damaged.gz", bytes(damaged)))


# --- MNIST from a folder ------------------------------------------------------------------------
@pytest.mark.parametrize("gzipped", [False, True])
def test_mnist_reads_the_four_files(tmp_path, gzipped):
    written = tiny_mnist(tmp_path, gzipped=gzipped)
    (X, y), (X_test, y_test) = mnist(tmp_path)
    np.testing.assert_array_equal(X, written["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y, written["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(X_test, written["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, written["t10k-labels-idx1-ubyte"])
    assert X.dtype == np.uint8 and y.dtype == np.int64 and X.shape == (5, 28, 28)


def test_mnist_accepts_the_dotted_file_names(tmp_path):
    dotted = {n: n.replace("-idx", ".idx") for n in
              ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    written = tiny_mnist(tmp_path, names=dotted)
    (_, y), _ = mnist(tmp_path)
    np.testing.assert_array_equal(y, written["train-labels-idx1-ubyte"])


def test_mnist_checks_the_files_fit_together(tmp_path):
    tiny_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(IDXError, match="5 images but .* 4 labels"):
        mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.full(5, 12, dtype=np.uint8)))
    with pytest.raises(IDXError, match="digits 0-9, found 12"):
        mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, dtype=np.uint8)))
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((5, 784), dtype=np.uint8)))
    with pytest.raises(IDXError, match=r"expected images of shape \(n, rows, cols\)"):
        mnist(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte",
          idx_bytes(np.zeros((5, 28, 28), dtype=np.float32)))
    with pytest.raises(IDXError, match="type uint8"):
        mnist(tmp_path)


def test_mnist_missing_files_suggest_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mnist(tmp_path / "nowhere")
    tiny_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="no test labels file .* download=True"):
        mnist(tmp_path)


# --- the download path, on local file:// URLs ---------------------------------------------------
@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder of gzipped files served as a file:// mirror, with their real checksums."""
    served = tmp_path / "mirror"
    written = tiny_mnist(served, gzipped=True)
    files = {}
    for key, (name, _) in idx_module.MNIST_FILES.items():
        digest = hashlib.sha256((served / name).read_bytes()).hexdigest()
        files[key] = (name, digest)
    monkeypatch.setattr(idx_module, "MNIST_FILES", files)
    monkeypatch.setattr(idx_module, "MNIST_MIRRORS", [served.as_uri() + "/"])
    return served, written


def test_download_fetches_checks_and_then_reads(tmp_path, mirror, monkeypatch):
    _, written = mirror
    cache = tmp_path / "cache"
    (X, y), (X_test, _) = mnist(cache, download=True)
    np.testing.assert_array_equal(X, written["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y, written["train-labels-idx1-ubyte"])
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        name for name, _ in idx_module.MNIST_FILES.values())
    # a second call reads the cache and does not fetch again
    monkeypatch.setattr(idx_module, "MNIST_MIRRORS", ["file:///nonexistent/"])
    (X_again, _), _ = mnist(cache, download=True)
    np.testing.assert_array_equal(X_again, X)


def test_download_goes_to_the_default_cache_folder(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("FUSION_DATA_DIR", str(tmp_path / "data-home"))
    mnist(download=True)
    assert (tmp_path / "data-home" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_a_checksum_mismatch_leaves_no_file(tmp_path, mirror, monkeypatch):
    files = dict(idx_module.MNIST_FILES)
    name, _ = files["train_images"]
    files["train_images"] = (name, "0" * 64)
    monkeypatch.setattr(idx_module, "MNIST_FILES", files)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        mnist(cache, download=True)
    assert "0" * 64 in str(info.value)
    assert not (cache / name).exists() and not (cache / (name + ".part")).exists()


def test_download_tries_the_next_mirror(tmp_path, mirror, monkeypatch):
    served, _ = mirror
    monkeypatch.setattr(idx_module, "MNIST_MIRRORS",
                        [(tmp_path / "empty").as_uri() + "/", served.as_uri() + "/"])
    (X, _), _ = mnist(tmp_path / "cache", download=True)
    assert X.shape == (5, 28, 28)
    monkeypatch.setattr(idx_module, "MNIST_MIRRORS", [(tmp_path / "empty").as_uri() + "/"])
    with pytest.raises(DownloadError, match="could not download train-images"):
        mnist(tmp_path / "other", download=True)
