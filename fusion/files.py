"""Files Fusion reads and writes for its users: only regular files are read, whole writes only.

Reading: a path given as a model, a history or a data file may name anything, and only a
regular file is read. A FIFO would block forever and ``/dev/zero`` would be read until memory
runs out, so both are refused with :class:`NotARegularFileError` before a byte is read.
JSON from such a file is parsed with its nesting bounded (:func:`parse_json`): a document
nested thousands of levels deep is an error that says so, never a ``RecursionError``.

Writing: :func:`atomic_write` writes a temporary file in the target's folder and renames it
over the target, so that an interrupted write leaves the old file or none, never half of one.
The new file gets the permissions any file the user writes gets (``0o666`` less the umask), or
those of the file it replaces.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from typing import IO

import numpy as np

#: JSON nested deeper than this is refused before it is parsed (Python's parser recurses).
MAX_JSON_DEPTH = 100


class NotARegularFileError(OSError):
    """The path names a FIFO, a device, a socket or a folder, not a regular file."""

    def __init__(self, problem: str, filename: str):
        super().__init__(problem)
        self.strerror = problem
        self.filename = filename

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _refuse(path, mode: int) -> NotARegularFileError:
    return NotARegularFileError(f"is {_kind(mode)}, not a regular file", os.fspath(path))


@contextlib.contextmanager
def open_regular(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading in binary mode if it is a regular file.

    Raises :class:`NotARegularFileError` for anything else, without blocking on a FIFO, and
    the usual ``OSError`` (``FileNotFoundError``, ``PermissionError``) otherwise.

    >>> with open_regular("model.safetensors") as f:  # doctest: +SKIP
    ...     head = f.read(8)
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode)
    # non-blocking: if a FIFO took the file's place since the check, opening it cannot hang
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | nonblocking | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(path, mode)
        if nonblocking:
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_regular_file(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``; a file larger than ``limit`` bytes raises
    ``ValueError`` before it is read.

    >>> read_regular_file("history.json", limit=1 << 20)  # doctest: +SKIP
    b'{...}'
    """
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise ValueError(f"{os.fspath(path)!r}: {size} bytes, more than the {limit} "
                             "bytes such a file may have")
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:  # it grew while being read
        raise ValueError(f"{os.fspath(path)!r}: more than the {limit} bytes such a file may "
                         "have")
    return data


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str | bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (0 for a bare value), counted
    without parsing it (so without recursion)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    codes = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int64)
    steps -= (codes == ord("]")) | (codes == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


def parse_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads(text)``, refusing text nested deeper than ``max_depth`` with a
    ``ValueError`` that says so (``json.JSONDecodeError`` for malformed text, as usual).

    >>> parse_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"JSON nested {depth} levels deep; at most {max_depth} are read")
    return json.loads(text)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Write ``path`` whole or not at all: the block writes to a temporary file in the same
    folder, which replaces ``path`` when the block ends without an exception (and is removed
    if it raises). ``mode`` is ``"wb"`` or ``"w"``; ``open_args`` go to :func:`open`
    (``encoding``, ``newline``).

    A ``path`` that exists and is not a regular file (``/dev/null``, a FIFO) is written
    directly, as a shell redirection would.

    >>> with atomic_write("history.json", "w", encoding="utf-8") as f:  # doctest: +SKIP
    ...     f.write("{}")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes with mode 'w' or 'wb', not {mode!r}")
    target = os.path.realpath(path)  # through a symbolic link to the file it names
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", os.fspath(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(path, mode, **open_args) as f:
            yield f
        return
    folder, name = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 less the umask, as for any file the user writes
            fd = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:  # the file it replaces keeps its permissions
            os.chmod(temporary, stat.S_IMODE(existing.st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
