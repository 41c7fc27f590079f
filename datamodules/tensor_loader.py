"""Batches cut from tensors held whole, in a seeded order that both modules see identically.

This is the fast path for small tables: no per-item ``__getitem__`` and no collate. Lightning calls
``loader.sampler.set_epoch(epoch)`` at every epoch start, which selects that epoch's order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor


class EpochPermutation:
    """Epoch e uses the (e+1)-th ``permutation(n)`` of one ``numpy.random.default_rng(seed)``.

    That is exactly the week-4 notebook's ``rng.permutation(n)`` per epoch, so a run can be checked
    against it step by step.
    """

    def __init__(self, n: int, shuffle: bool, seed: int) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.epoch = 0
        self._rng = np.random.default_rng(seed)
        self._drawn: list[np.ndarray] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        while len(self._drawn) <= self.epoch:
            self._drawn.append(self._rng.permutation(self.n))
            if len(self._drawn) > 2:  # only the latest epochs are asked for again
                self._drawn[-3] = np.empty(0, dtype=np.int64)
        return self._drawn[self.epoch]


class TensorBatchLoader:
    """Iterable of batches ``(t[idx] for t in tensors)`` with ``idx`` a slice of the epoch's order."""

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"all tensors need the same length, got {[len(t) for t in tensors]}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = EpochPermutation(n, shuffle, seed)
        self.batch_sampler = None  # Lightning inspects both attributes, as on a DataLoader

    def __len__(self) -> int:
        n = self.sampler.n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = torch.from_numpy(self.sampler.order())
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)
