"""Batches cut from tensors held whole, in a seeded order per notebook epoch: the one loader of single runs and
sweeps.

No per-item ``__getitem__`` and no collate: a batch is one index into whole-split tensors. The training module
says which notebook epochs (0-based) a Lightning epoch serves (:meth:`TensorBatchLoader.set_epochs`): one epoch
gives that epoch's batches; several give one batch holding each of those epochs whole, in its own order (epoch
blocks, :mod:`models.epoch_blocks`).

A sweep's stack trains many members at once. Members whose data order is the same (one data seed, or no
shuffling) share every batch: ``(rows, ...)``, one copy. Members with orders of their own (``seed`` given per
member) get batches with a leading member dimension, ``(M, rows, ...)``, each member's rows in its own order;
per-member tensors ``(M, n, ...)`` (``per_member_tensors``) serve members whose data differ.

Under DDP (``torch.distributed`` initialised when the loader is iterated) every rank reads its own shard of the
same epoch order; ``batch_size`` is per rank, so a global batch is ``batch_size * world_size`` rows. See
:func:`rank_batch_slices` for the exact cut.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
        self.keep = 2
        self.restart()

    def restart(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.drawn: dict[int, np.ndarray] = {}
        self.next_epoch = 0

    def order(self, epoch: int) -> np.ndarray:
        """The row order of notebook epoch ``epoch`` (0-based)."""
        if not self.shuffle:
            return np.arange(self.n)
        if epoch < self.next_epoch and epoch not in self.drawn:
            self.restart()
        while self.next_epoch <= epoch:
            self.drawn[self.next_epoch] = self.rng.permutation(self.n)
            self.drawn.pop(self.next_epoch - self.keep, None)
            self.next_epoch += 1
        return self.drawn[epoch]


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
    """Iterable of batches ``(t[idx] for t in tensors)`` with ``idx`` positions of the epoch's order.

    ``seed`` is one data seed, or one per member of a sweep's stack (see the module docstring).
    ``whole_epochs`` makes every Lightning epoch one batch holding each epoch set by :meth:`set_epochs` whole,
    however many batches an epoch has (a sweep's blocks); a single run groups only epochs of one batch.

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
        seed: int | Sequence[int] = 0,
        drop_last: bool = False,
        shard: bool = True,
        per_member_tensors: bool = False,
        whole_epochs: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rows_axis = 1 if per_member_tensors else 0
        n = tensors[0].shape[rows_axis]
        if any(t.shape[rows_axis] != n for t in tensors):
            raise ValueError(f"all tensors need the same length, got {[t.shape[rows_axis] for t in tensors]}")
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.drop_last, self.shard, self.whole_epochs = drop_last, shard, whole_epochs
        self.per_member_tensors = per_member_tensors
        self.seeds = [seed] if isinstance(seed, int) else list(seed)
        # one order per distinct seed: members that share a data order share every batch
        distinct = dict.fromkeys(self.seeds) if shuffle else [self.seeds[0]]
        self.orders = {s: EpochPermutation(n, shuffle, s) for s in distinct}
        self.epochs = range(0, 1)

    @property
    def n(self) -> int:
        return next(iter(self.orders.values())).n

    @property
    def seed(self) -> int:
        return self.seeds[0]

    @property
    def member_orders(self) -> bool:
        """Whether batches carry one order per member (a member dimension) rather than one shared order."""
        return len(self.orders) > 1

    @property
    def row_order(self) -> EpochPermutation:
        """Where a single order's rows come from (one data seed)."""
        (order,) = self.orders.values()
        return order

    def use_row_order(self, order: EpochPermutation) -> None:
        """Serve every epoch in ``order``'s row orders instead (anything with ``n``, ``shuffle``, ``keep`` and
        ``order(epoch)``): e.g. ``torch.randperm``, as a plain PyTorch script orders its rows."""
        if len(self.orders) != 1 or order.n != self.n:
            raise ValueError(f"a row order for {order.n} rows cannot replace {len(self.orders)} order(s) of {self.n}")
        self.orders = {self.seed: order}

    def set_epoch(self, epoch: int) -> None:
        """Serve notebook epoch ``epoch`` (0-based)."""
        self.set_epochs(range(epoch, epoch + 1))

    def set_epochs(self, epochs: range) -> None:
        """Serve these notebook epochs (0-based); several are served as one batch, each epoch whole in its order."""
        if len(epochs) > 1 and not self.whole_epochs and len(self.slices()) != 1:
            raise ValueError(f"an epoch of {len(self)} batches cannot be grouped; it must be one batch")
        self.epochs = epochs
        for order in self.orders.values():
            order.keep = max(order.keep, len(epochs) + 1)

    def unsharded(self) -> TensorBatchLoader:
        """The same batches as a single process reads them (same order, epochs and batch size)."""
        whole = TensorBatchLoader(
            self.tensors,
            self.batch_size,
            self.shuffle,
            self.seeds if len(self.seeds) > 1 else self.seed,
            self.drop_last,
            False,
            self.per_member_tensors,
            self.whole_epochs,
        )
        whole.set_epochs(self.epochs)
        return whole

    def slices(self, rank: int | None = None, world_size: int | None = None) -> list[slice]:
        """Positions in an epoch's order of each of this rank's batches."""
        this_rank, this_world_size = rank_and_world_size() if self.shard else (0, 1)
        rank = this_rank if rank is None else rank
        world_size = this_world_size if world_size is None else world_size
        return rank_batch_slices(self.n, self.batch_size, rank, world_size, self.drop_last)

    def grouped(self) -> bool:
        return self.whole_epochs or len(self.epochs) > 1

    def __len__(self) -> int:
        return 1 if self.grouped() else len(self.slices())

    def batch_rows(self, rank: int | None = None, world_size: int | None = None) -> list[int]:
        """Rows in each batch of one epoch of ``rank`` among ``world_size`` (default: this process), in order;
        lets a module count its optimiser updates ahead of time and cut a block's updates per batch."""
        return [s.stop - s.start for s in self.slices(rank, world_size)]

    def epoch_positions(self, epoch: int, positions: np.ndarray | slice) -> np.ndarray:
        """Row indices at ``positions`` of the epoch's order: (rows,), or (M, rows) with member orders."""
        by_seed = {seed: order.order(epoch)[positions] for seed, order in self.orders.items()}
        if not self.member_orders:
            return next(iter(by_seed.values()))
        return np.stack([by_seed[seed] for seed in self.seeds])

    def gather(self, index: np.ndarray) -> tuple[Tensor, ...]:
        """The rows at ``index`` of every tensor: shared or per-member tensors, shared or per-member index."""
        idx = torch.from_numpy(index)
        if not self.member_orders:
            return tuple(t[:, idx] if self.per_member_tensors else t[idx] for t in self.tensors)
        if not self.per_member_tensors:
            return tuple(t[idx] for t in self.tensors)
        return tuple(torch.take_along_dim(t, idx.reshape(*idx.shape, *[1] * (t.ndim - 2)), dim=1) for t in self.tensors)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        batches = self.slices()
        if self.grouped():
            if not self.epochs:
                return
            positions = np.concatenate([np.arange(s.start, s.stop) for s in batches])
            if not self.shuffle:  # every epoch in file order: Lab 4's thousands of epochs need it once
                yield self.gather(np.tile(self.epoch_positions(0, positions), len(self.epochs)))
                return
            yield self.gather(np.concatenate([self.epoch_positions(e, positions) for e in self.epochs], axis=-1))
            return
        (epoch,) = self.epochs
        for positions in batches:
            yield self.gather(self.epoch_positions(epoch, positions))
