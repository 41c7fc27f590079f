"""Batches cut from tensors held whole, in a seeded order that both modules see identically.

This is the fast path for small tables: no per-item ``__getitem__`` and no collate. The training
module calls ``loader.set_epoch(epoch)`` at every epoch start (``on_train_epoch_start``), which
selects that epoch's order (or, with :meth:`TensorBatchLoader.group_epochs`, the block of epochs one
training step runs).

Under DDP (``torch.distributed`` initialised when the loader is iterated) every rank reads its own
shard of the same epoch order; ``batch_size`` is per rank, so a global batch is
``batch_size * world_size`` rows. See :func:`rank_batch_slices` for the exact cut.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor


class EpochPermutation:
    """Epoch e uses the (e+1)-th ``permutation(n)`` of one ``numpy.random.default_rng(seed)``.

    That is exactly the week-4 notebook's ``rng.permutation(n)`` per epoch, so a run can be checked
    against it step by step. Only the latest ``keep`` orders are held; an older one is drawn again
    from the start of the sequence.
    """

    def __init__(self, n: int, shuffle: bool, seed: int) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.epoch = 0
        self.keep = 2
        self._restart()

    def _restart(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._drawn: dict[int, np.ndarray] = {}
        self._next = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The order of ``epoch`` (by default the epoch set last)."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return np.arange(self.n)
        if epoch < self._next and epoch not in self._drawn:
            self._restart()
        while self._next <= epoch:
            self._drawn[self._next] = self._rng.permutation(self.n)
            self._drawn.pop(self._next - self.keep, None)
            self._next += 1
        return self._drawn[epoch]


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` outside DDP: the one place the project
    asks, for the loader's shards and for the manual module's gradient average (``models/grad_sync.py``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_batch_slices(n: int, batch_size: int, rank: int, world_size: int, drop_last: bool) -> list[slice]:
    """Positions in the epoch order that ``rank`` batches, one slice per step.

    The order is cut into global blocks of ``batch_size * world_size`` rows, the batches a single
    process would use with that batch size; rank r takes rows ``[r*batch_size, (r+1)*batch_size)`` of
    every block. Averaging the ranks' mean-loss gradients then gives exactly the single-process
    gradient of the block, step by step.

    The last, short block of m rows (kept unless ``drop_last``) is split into ``world_size``
    contiguous parts as evenly as possible: exact when m is a multiple of ``world_size``, otherwise
    the parts differ by one row, and that one step weights a row by 1/(world_size * part) instead of
    1/m. When m < world_size some rank would get no row (an empty batch has no mean loss), so those
    rows join the previous block, which is then split evenly. Every rank therefore runs the same
    number of steps, which DDP needs (a rank with a step more would wait forever in its all-reduce),
    and no row is ever dropped or repeated, so evaluation metrics cover each row exactly once.
    """
    block = batch_size * world_size
    full, tail = divmod(n, block)
    if drop_last or tail == 0:
        return [slice(b * block + rank * batch_size, b * block + (rank + 1) * batch_size) for b in range(full)]
    if n < world_size:
        raise ValueError(
            f"{n} rows cannot be shared by {world_size} ranks: every rank needs at least one row per batch. "
            "Run on fewer devices or with more data."
        )
    last_start = full * block
    if tail < world_size:  # too few rows for every rank: fold them into the previous block
        full, last_start, tail = full - 1, last_start - block, tail + block
    base, extra = divmod(tail, world_size)
    start = last_start + rank * base + min(rank, extra)
    last = slice(start, start + base + (rank < extra))
    return [slice(b * block + rank * batch_size, b * block + (rank + 1) * batch_size) for b in range(full)] + [last]


class TensorBatchLoader:
    """Iterable of batches ``(t[idx] for t in tensors)`` with ``idx`` a slice of the epoch's order.

    The rank and world size are read when the loader is measured or iterated, not when it is built,
    so DataModules need no DDP code: under DDP each rank gets its shard of every global batch.
    ``shard=False`` (or :meth:`unsharded`) reads every row on every rank, for code outside the
    training loop that needs the whole split, as a fresh DataLoader would give it.
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        shard: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"all tensors need the same length, got {[len(t) for t in tensors]}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.shard = shard
        self.permutation = EpochPermutation(n, shuffle, seed)
        self.epochs_per_batch = 1
        self.total_epochs: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s row order (0-based, Lightning's ``current_epoch``)."""
        self.permutation.set_epoch(epoch)

    def group_epochs(self, epochs_per_batch: int, total_epochs: int | None) -> None:
        """Serve ``epochs_per_batch`` whole epochs as one batch, so one training step can run them all.

        The loader's epoch then numbers these batches: batch b holds epochs ``b*epochs_per_batch``
        onwards, each in the order it has alone; the last batch stops at ``total_epochs``. Only an epoch
        that is one batch can be grouped.
        """
        if len(self._slices()) != 1:
            raise ValueError(f"an epoch of {len(self)} batches cannot be grouped; it must be one batch")
        self.epochs_per_batch, self.total_epochs = epochs_per_batch, total_epochs
        self.permutation.keep = max(self.permutation.keep, epochs_per_batch + 1)

    def epochs_in_batch(self) -> range:
        """The epochs the loader's current epoch serves (just that epoch unless grouped)."""
        first = self.permutation.epoch * self.epochs_per_batch
        last = first + self.epochs_per_batch
        return range(first, last if self.total_epochs is None else min(last, self.total_epochs))

    def unsharded(self) -> TensorBatchLoader:
        """The same batches as a single process reads them (same order, epoch and batch size)."""
        permutation = self.permutation
        whole = TensorBatchLoader(
            self.tensors, self.batch_size, permutation.shuffle, permutation.seed, self.drop_last, False
        )
        whole.set_epoch(permutation.epoch)
        return whole

    def _slices(self, rank: int | None = None, world_size: int | None = None) -> list[slice]:
        this_rank, this_world_size = rank_and_world_size() if self.shard else (0, 1)
        rank = this_rank if rank is None else rank
        world_size = this_world_size if world_size is None else world_size
        return rank_batch_slices(self.permutation.n, self.batch_size, rank, world_size, self.drop_last)

    def __len__(self) -> int:
        return len(self._slices())

    def batch_rows(self, rank: int | None = None, world_size: int | None = None) -> list[int]:
        """Rows in each batch of ``rank`` among ``world_size`` (default: this process), in order; lets a
        module count its optimiser updates ahead of time."""
        return [s.stop - s.start for s in self._slices(rank, world_size)]

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        if self.epochs_per_batch > 1:
            (positions,) = self._slices()
            epochs = self.epochs_in_batch()
            if epochs:
                idx = torch.cat([torch.from_numpy(self.permutation.order(e))[positions] for e in epochs])
                yield tuple(t[idx] for t in self.tensors)
            return
        order = torch.from_numpy(self.permutation.order())
        for positions in self._slices():
            idx = order[positions]
            yield tuple(t[idx] for t in self.tensors)
