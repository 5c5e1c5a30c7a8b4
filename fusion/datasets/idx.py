"""MNIST from its four standard IDX files, read from a folder, or downloaded once and checked.

The IDX format: two zero bytes, one byte for the element type, one byte for the number of
dimensions, then each dimension as a big-endian uint32, then the elements, big-endian, in C
order. Files may be gzipped (recognised by their first bytes, whatever their name).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ..files import read_regular_file

#: IDX element type codes and the numpy types they hold (big-endian on disk).
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: The four files, each with the SHA-256 of its gzipped copy on the mirrors.
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz",
                     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": ("train-labels-idx1-ubyte.gz",
                     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": ("t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}

#: Where ``download=True`` looks, in order (the original site no longer serves the files).
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

_CHUNK = 1 << 16


class IDXError(ValueError):
    """A file is not a valid IDX file, or not the IDX file that was expected."""


class DownloadError(OSError):
    """No mirror gave a file with the expected checksum."""


def _read_bytes(path: Path) -> bytes:
    raw = read_regular_file(path)  # a FIFO or a device is refused, not read forever
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), in native byte order.

    Every part of the header is checked against the file: a bad magic number, an unknown
    element type, or a size that does not match the dimensions raises :class:`IDXError`
    naming the file.

    >>> import tempfile, struct
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx1-ubyte")
    >>> _ = open(path, "wb").write(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([7, 8, 9]))
    >>> read_idx(path).tolist()
    [7, 8, 9]
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    zero, code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00":
        raise IDXError(f"{path}: bad magic number 0x{raw[:4].hex()} (an IDX file starts with "
                       "two zero bytes)")
    if code not in IDX_TYPES:
        raise IDXError(f"{path}: unknown IDX element type 0x{code:02x} (known: "
                       f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)})")
    if ndim == 0:
        raise IDXError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated header ({len(raw)} bytes, {ndim} dimensions need "
                       f"{header})")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise IDXError(f"{path}: {problem}: dimensions {shape} of {dtype.name} need "
                       f"{expected} bytes, the data holds {len(raw)}")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def default_cache_dir() -> Path:
    """``$FUSION_DATA_DIR``, else ``$XDG_CACHE_HOME/fusion``, else ``~/.cache/fusion``."""
    if os.environ.get("FUSION_DATA_DIR"):
        return Path(os.environ["FUSION_DATA_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "fusion"


def _candidates(gz_name: str) -> list[str]:
    """File names the same content is found under: raw or gzipped, with a dash or a dot."""
    base = gz_name.removesuffix(".gz")
    dotted = base.replace("-idx", ".idx")
    return [base, base + ".gz", dotted, dotted + ".gz"]


def _find(folder: Path, gz_name: str) -> Path | None:
    for name in _candidates(gz_name):
        if (folder / name).is_file():
            return folder / name
    return None


def sha256sum(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(urls: list[str], dest: str | os.PathLike, sha256: str,
                  timeout: float = 60.0) -> Path:
    """Fetch the first of ``urls`` whose content has the SHA-256 ``sha256`` into ``dest``.

    The file is written beside ``dest`` and renamed only once its checksum is right, so an
    interrupted or tampered download never leaves a file that looks complete.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=timeout) as response, \
                    open(partial, "wb") as out:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:  # URLError and HTTPError are OSErrors
            failures.append(f"{url}: {exc}")
            continue
        if digest.hexdigest() != sha256:
            failures.append(f"{url}: checksum mismatch (expected sha256 {sha256}, got "
                            f"{digest.hexdigest()})")
            continue
        shutil.move(partial, dest)
        return dest
    partial.unlink(missing_ok=True)
    raise DownloadError(f"could not download {dest.name}:\n  " + "\n  ".join(failures))


def _load_split(folder: Path, images_key: str, labels_key: str,
                download: bool) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for key in (images_key, labels_key):
        gz_name, sha256 = MNIST_FILES[key]
        path = _find(folder, gz_name)
        if path is None:
            if not download:
                raise FileNotFoundError(
                    f"no {key.replace('_', ' ')} file in {folder} (looked for "
                    f"{', '.join(_candidates(gz_name))}); pass download=True to fetch it")
            path = download_file([m + gz_name for m in MNIST_MIRRORS], folder / gz_name,
                                 sha256)
        arrays.append((path, read_idx(path)))
    (image_path, images), (label_path, labels) = arrays
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(f"{image_path}: expected images of shape (n, rows, cols) and type "
                       f"uint8, got shape {images.shape} of {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXError(f"{label_path}: expected labels of shape (n,) and type uint8, got "
                       f"shape {labels.shape} of {labels.dtype}")
    if len(images) != len(labels):
        raise IDXError(f"{image_path} holds {len(images)} images but {label_path} holds "
                       f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise IDXError(f"{label_path}: labels must be digits 0-9, found {int(labels.max())}")
    return images, labels.astype(np.int64)


def mnist(path: str | os.PathLike | None = None, download: bool = False):
    """MNIST as ``((train_images, train_labels), (test_images, test_labels))``.

    Images are uint8 arrays of shape (n, 28, 28) (scale them yourself, e.g.
    ``X.reshape(len(X), -1).astype(np.float32) / 255``), labels int64 in 0-9. The four files
    are read from the folder ``path`` (default: ``default_cache_dir() / "mnist"``) under their
    standard names, raw or gzipped. With ``download=True``, missing files are fetched into that
    folder from :data:`MNIST_MIRRORS` and checked against their SHA-256 sums first.

    >>> (X, y), (X_test, y_test) = mnist("data/mnist")  # doctest: +SKIP
    >>> X.shape, X_test.shape  # doctest: +SKIP
    ((60000, 28, 28), (10000, 28, 28))
    """
    folder = Path(path) if path is not None else default_cache_dir() / "mnist"
    if not download and not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {folder} does not exist; put the four IDX files "
                                "there or pass download=True")
    train = _load_split(folder, "train_images", "train_labels", download)
    test = _load_split(folder, "test_images", "test_labels", download)
    if train[0].shape[1:] != test[0].shape[1:]:
        raise IDXError(f"training images are {train[0].shape[1:]} but test images are "
                       f"{test[0].shape[1:]}")
    return train, test
