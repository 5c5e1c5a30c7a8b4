"""DataLoader: batches of Tensors from a dataset, in sequential or seeded random order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ..core.backend import Backend, get_backend, use_backend
from .dataset import Dataset, default_collate
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler


class DataLoader:
    """Iterate over a dataset in batches of Tensors.

    ``shuffle=True`` visits the samples in a new random order each epoch (reproducible with
    ``seed``, or through :func:`fusion.manual_seed` when no seed is given). ``drop_last`` drops
    a last batch shorter than ``batch_size``. A custom ``sampler`` (indices) or
    ``batch_sampler`` (lists of indices) replaces the built-in order; a ``collate_fn`` turns a
    list of samples into a batch instead of :func:`default_collate`. ``backend`` picks where the
    batches live: by default, Tensors stay where they are and host data goes to the default
    backend of the moment the loader was made.

    A :class:`TensorDataset` is sliced once per batch, never sample by sample.

    >>> import numpy as np
    >>> from fusion.data import TensorDataset
    >>> ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [y.tolist() for x, y in DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 seed: int | None = None, drop_last: bool = False,
                 sampler: Sampler | None = None,
                 batch_sampler: Sampler | None = None,
                 collate_fn: Callable[[list], object] | None = None,
                 backend: str | Backend | None = None):
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler replaces batch_size, shuffle, sampler and "
                                 "drop_last; give none of them with it")
        elif sampler is not None:
            if shuffle:
                raise ValueError("sampler and shuffle=True exclude each other: the sampler "
                                 "decides the order")
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.backend = backend
        # the default backend now, as a model's parameters take it when the model is built:
        # host data loaded later goes there even if the loop runs under another default
        self.default_backend = get_backend().name
        if batch_sampler is None:
            if sampler is None:
                sampler = (RandomSampler(dataset, seed=seed) if shuffle
                           else SequentialSampler(dataset))
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.batch_size = getattr(batch_sampler, "batch_size", None)
        self.drop_last = getattr(batch_sampler, "drop_last", False)

    def __len__(self) -> int:
        """The number of batches per epoch."""
        return len(self.batch_sampler)

    def fetch(self, indices: Sequence[int]):
        """The batch of the samples at ``indices``."""
        with use_backend(self.default_backend):
            return self._fetch(indices)

    def _fetch(self, indices: Sequence[int]):
        if self.collate_fn is not None:
            return self.collate_fn([self.dataset[int(i)] for i in indices])
        if isinstance(self.dataset, Dataset):
            return self.dataset.get_batch(indices, self.backend)
        # any object with __len__ and __getitem__ (a list of samples, say) works too
        return default_collate([self.dataset[int(i)] for i in indices], self.backend)

    def __iter__(self) -> Iterator:
        for indices in self.batch_sampler:
            yield self.fetch(indices)

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, batches={len(self)})")
