"""Datasets: indexable collections of samples, and how a list of samples becomes a batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..core.backend import Backend, get_backend
from ..core.tensor import Tensor


def _host(value) -> np.ndarray:
    """``value`` (Tensor, numpy array or nested list) as a numpy array on the host."""
    if isinstance(value, Tensor):
        return value.numpy()
    return np.asarray(value)


def default_collate(samples: Sequence, backend: str | Backend | None = None):
    """Stack a list of samples into one batch of Tensors, field by field.

    A sample may be a Tensor, a numpy array, a number, or a tuple, list or dict of those; the
    batch has the same structure with a new leading axis. Stacking happens once, in numpy, and
    the result is moved to the backend in one piece. dtypes follow numpy's (a float64 array
    gives a float64 batch).

    >>> batch = default_collate([(np.ones(2), 0), (np.zeros(2), 1)])
    >>> batch[0].shape, batch[1].tolist()
    ((2, 2), [0, 1])
    """
    if len(samples) == 0:
        raise ValueError("cannot collate an empty list of samples")
    first = samples[0]
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples], backend) for key in first}
    if isinstance(first, tuple | list) and not _is_number_list(first):
        width = len(first)
        if any(len(s) != width for s in samples):
            raise ValueError("samples of a batch must all have the same number of fields")
        fields = [default_collate([s[i] for s in samples], backend) for i in range(width)]
        return tuple(fields) if isinstance(first, tuple) else fields
    if backend is None and isinstance(first, Tensor):
        backend = first.backend
    stacked = np.stack([_host(s) for s in samples])
    return Tensor(stacked, backend=backend)


def _is_number_list(value) -> bool:
    """A list of plain numbers is one array-like field, not a tuple of fields."""
    return isinstance(value, list) and all(
        isinstance(v, int | float | np.number) for v in value)


class Dataset:
    """A map-style dataset: ``len(ds)`` samples, ``ds[i]`` the i-th.

    Subclass it and define ``__len__`` and ``__getitem__``. A subclass that can fetch many
    samples at once faster than one by one overrides :meth:`get_batch`.

    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         return float(i), float(i * i)
    >>> Squares()[3]
    (3.0, 9.0)
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index: int):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def get_batch(self, indices: Sequence[int], backend: str | Backend | None = None):
        """The samples at ``indices`` collated into one batch of Tensors."""
        return default_collate([self[int(i)] for i in indices], backend)


class TensorDataset(Dataset):
    """Samples that are rows of arrays of one length: ``ds[i]`` is ``(a[i], b[i], ...)``.

    The arrays (Tensors, numpy arrays or lists) are kept on the host as numpy arrays, so a
    batch is one slice of each array, copied to the backend in one piece. A numpy array is kept
    as it is, without a copy (datasets can be large): a later write to it changes the samples
    served from then on, never a batch already made. Batches go to the
    backend of the first Tensor given, or else to the current default backend.

    >>> ds = TensorDataset(np.arange(6.0).reshape(3, 2), np.array([0, 1, 0]))
    >>> len(ds), ds[1][1].item()
    (3, 1)
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays: tuple[np.ndarray, ...] = tuple(_host(a) for a in arrays)
        lengths = [len(a) if a.ndim else None for a in self.arrays]
        if None in lengths:
            raise ValueError("TensorDataset needs arrays with a leading axis, got a 0-d one")
        if len(set(lengths)) > 1:
            raise ValueError(f"TensorDataset needs arrays of one length, got lengths {lengths}")
        given = next((a for a in arrays if isinstance(a, Tensor)), None)
        self.backend: str | None = given.backend if given is not None else None

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(Tensor(a[index], backend=self._backend(None)) for a in self.arrays)

    def _backend(self, backend) -> Backend:
        return get_backend(backend if backend is not None else self.backend)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        """The whole arrays as Tensors."""
        return tuple(Tensor(a, backend=self._backend(None)) for a in self.arrays)

    def get_batch(self, indices, backend: str | Backend | None = None) -> tuple[Tensor, ...]:
        """One slice per array: a view when ``indices`` are consecutive, one gather otherwise."""
        index = np.asarray(indices, dtype=np.int64)
        if len(index) and index[-1] - index[0] == len(index) - 1 and (
                len(index) == 1 or bool(np.all(np.diff(index) == 1))):
            index = slice(int(index[0]), int(index[-1]) + 1)
        target = self._backend(backend)
        return tuple(Tensor(np.ascontiguousarray(a[index]), backend=target) for a in self.arrays)
