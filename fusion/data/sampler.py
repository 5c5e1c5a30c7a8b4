"""Samplers: the order in which a DataLoader visits a dataset, and how it groups it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized

import numpy as np

from ..core import random as _rng


def _count(data_source: Sized | int) -> int:
    return data_source if isinstance(data_source, int) else len(data_source)


class Sampler:
    """Yields dataset indices; ``len(sampler)`` is how many it yields per pass.

    >>> class Evens(Sampler):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         return iter(range(0, self.n, 2))
    ...     def __len__(self):
    ...         return (self.n + 1) // 2
    >>> list(Evens(5))
    [0, 2, 4]
    """

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class SequentialSampler(Sampler):
    """0, 1, ..., n - 1, every pass.

    >>> list(SequentialSampler(3))
    [0, 1, 2]
    """

    def __init__(self, data_source: Sized | int):
        self.num_samples = _count(data_source)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.num_samples))

    def __len__(self) -> int:
        return self.num_samples


class RandomSampler(Sampler):
    """A random order of the indices, a new one each pass.

    With ``seed`` the sequence of passes is the same on every run (pass 1 differs from
    pass 2, but every run's pass 1 is the same); with a numpy ``generator`` the draws come from
    it; with neither, from Fusion's generator, so :func:`fusion.manual_seed` makes it
    reproducible. ``replacement=True`` draws ``num_samples`` indices with replacement.

    >>> sorted(RandomSampler(4, seed=0))
    [0, 1, 2, 3]
    """

    def __init__(self, data_source: Sized | int, replacement: bool = False,
                 num_samples: int | None = None, seed: int | None = None,
                 generator: np.random.Generator | None = None):
        if seed is not None and generator is not None:
            raise ValueError("give RandomSampler a seed or a generator, not both")
        self.size = _count(data_source)
        self.replacement = replacement
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples < 0):
            raise ValueError(f"num_samples must be a non-negative int, not {num_samples!r}")
        if num_samples is not None and not replacement and num_samples > self.size:
            raise ValueError(f"cannot draw {num_samples} of {self.size} indices without "
                             "replacement")
        self.num_samples = self.size if num_samples is None else num_samples
        self.seed = seed
        self._generator = np.random.default_rng(seed) if seed is not None else generator

    def _draw_from(self) -> np.random.Generator:
        # Fusion's generator is looked up on each pass: manual_seed replaces it
        return self._generator if self._generator is not None else _rng.generator()

    def order(self) -> np.ndarray:
        """The indices of one new pass, as an int64 array."""
        rng = self._draw_from()
        if self.replacement:
            if self.size == 0 and self.num_samples:
                raise ValueError("cannot draw with replacement from an empty dataset")
            return rng.integers(0, self.size, self.num_samples, dtype=np.int64)
        return rng.permutation(self.size)[:self.num_samples].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``; ``len`` is the number of
    batches. The last batch is shorter unless ``drop_last`` drops it.

    >>> list(BatchSampler(SequentialSampler(5), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    >>> len(BatchSampler(SequentialSampler(5), batch_size=2, drop_last=True))
    2
    """

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        if type(self.sampler).__iter__ is RandomSampler.__iter__:
            order = self.sampler.order()  # one draw, sliced: no per-index Python loop
        else:
            order = np.fromiter(self.sampler, dtype=np.int64)
        size = self.batch_size
        stop = len(order) - len(order) % size if self.drop_last else len(order)
        for start in range(0, stop, size):
            yield order[start:start + size].tolist()

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
