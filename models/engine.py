"""Many optimiser updates inside one Lightning training step: :func:`run_updates`.

Lightning costs milliseconds per ``training_step``; with the notebooks' batch size 1, or their 1,000 epochs of a
3-row table, that overhead dwarfs the arithmetic. So a step may receive a block of rows and make one update per
``rows_per_update`` rows, in order: the result is exactly that of one step per small batch. Every update but the
block's last runs on the plain ``torch.optim`` optimizer (``LightningOptimizer.optimizer``); the last goes
through ``LightningOptimizer.step`` so that Lightning's hooks run once per step. Under DDP or mixed precision
every update goes through ``LightningOptimizer.step``.

For tiny dense nets on the CPU the hand-derived updates run on NumPy views of the same parameters, whose
per-call cost is several times lower than torch's, with the optimiser's rule from :mod:`models.optim`.

A step may also hold several notebook epochs: its updates are then cut per epoch, never across an epoch boundary,
and a per-epoch learning-rate schedule steps after each epoch's last update, exactly as between one-epoch steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from threadpoolctl import threadpool_limits
from torch import Tensor

from models.base_net import MLPParameters
from models.layers.xp import Array
from models.manual_net import LayerChain
from models.optim import array_rules, has_array_rule
from models.schedules import updates_per_batch

# Above this many parameters torch's vectorised kernels beat NumPy's lower call overhead.
NUMPY_PATH_MAX_PARAMETERS = 4096


def is_tiny(net: MLPParameters) -> bool:
    return sum(p.numel() for p in net.parameters()) <= NUMPY_PATH_MAX_PARAMETERS


def one_thread(tiny_on_cpu: bool) -> Callable[[], None] | None:
    """On the CPU, tiny nets (one, or a sweep's stack of them) run torch and BLAS on one thread: their matrices
    are a few rows wide, a second thread never pays, and waiting for one on a busy machine costs more than the
    arithmetic. Returns what restores the previous thread counts, or None."""
    if not tiny_on_cpu:
        return None
    torch_threads = torch.get_num_threads()
    blas = threadpool_limits(limits=1, user_api="blas")
    torch.set_num_threads(1)

    def restore() -> None:
        torch.set_num_threads(torch_threads)
        blas.restore_original_limits()

    return restore


def row_chunks(rows: int, rows_per_update: int | None) -> list[slice]:
    """The rows of each update of one batch: ``rows_per_update`` at a time (the last may be short), or all."""
    size = rows_per_update or rows
    if rows <= size:  # one update (single-example SGD, a full batch): the common case, kept cheap
        return [slice(0, rows)]
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def epoch_chunks(batch_rows: Sequence[int], epochs: int, rows_per_update: int | None) -> list[list[slice]]:
    """The rows of each update of a step holding ``epochs`` whole epochs of ``batch_rows`` each, grouped by epoch:
    each batch is cut on its own (so no update mixes two batches or two epochs), in order."""
    per_epoch, first = [], 0
    for _ in range(epochs):
        chunks = []
        for rows in batch_rows:
            chunks += [slice(first + s.start, first + s.stop) for s in row_chunks(rows, rows_per_update)]
            first += rows
        per_epoch.append(chunks)
    return per_epoch


def unequal_update_counts(rows_per_rank: list[list[int]], rows_per_update: int) -> str | None:
    """Why DDP ranks with these batch sizes would make different numbers of updates, or None.

    Every update all-reduces gradients, so a rank with one update more would wait forever.
    """
    for batch, rows in enumerate(zip(*rows_per_rank)):
        counts = [updates_per_batch(r, rows_per_update) for r in rows]
        if len(set(counts)) > 1:
            return (
                f"model.rows_per_update={rows_per_update} on {len(rows)} processes: training batch {batch} gives the "
                f"ranks {list(rows)} rows, i.e. {counts} updates, and every rank must make the same number of "
                "updates. Choose model.rows_per_update or data.batch_size so that the last batch splits evenly, "
                "or set model.rows_per_update to null."
            )
    return None


def update_loop(
    chain: LayerChain,
    x: Array,
    target: Array,
    chunks: list[slice],
    step: Callable[[list[Array]], None],
    keep_logits: bool = True,
) -> tuple[list[Array], list[Array]]:
    """The hand-derived updates, one per chunk of rows (axis -2): loss, gradients, ``step(gradients)``.

    Serves the NumPy path of one net and the sweep's stacks alike (there ``chain`` holds weights with
    a member dimension and each loss is one per member). Returns every update's loss and, with ``keep_logits``,
    its logits (a sweep reads none: kept, they would cost memory per update and member).
    """
    labels = target.ndim < x.ndim  # class labels (M?, N), else targets (M?, N, K)
    losses, logits = [], []
    for rows in chunks:
        losses.append(chain.loss(x[..., rows, :], target[..., rows] if labels else target[..., rows, :]))
        step(chain.backward())
        if keep_logits:
            logits.append(chain.z)
    return losses, logits


@dataclass
class NumpyPath:
    """A tiny hand-derived net's updates on NumPy views of its parameters and of its optimiser's state."""

    net: MLPParameters
    optimizer: torch.optim.Optimizer

    @staticmethod
    def applies(hand_derived: bool, net: MLPParameters, optimizer: torch.optim.Optimizer, one_process: bool) -> bool:
        """Plain single-process CPU runs of tiny dense nets without dropout or batch norm, with SGD or Adam."""
        spec = net.spec
        return (
            hand_derived
            and one_process
            and not spec.conv_channels
            and not spec.dropout
            and not spec.batch_norm  # the NumPy path carries no running statistics
            and has_array_rule(optimizer)
            and is_tiny(net)
            and all(p.device.type == "cpu" and p.dtype in (torch.float32, torch.float64) for p in net.parameters())
        )

    def run(
        self, x: Tensor, target: Tensor, chunks: list[slice], after_update: Callable[[int], None]
    ) -> tuple[Tensor, Tensor]:
        """One update per chunk of rows; ``after_update(i)`` after the i-th."""
        net = self.net
        views = [(w.detach().numpy(), None if b is None else b.detach().numpy()) for w, b in net.weights()]
        by_param = {id(p): i for i, p in enumerate(net.parameters())}
        rules = [(rule, [by_param[id(p)] for p in params]) for rule, params in array_rules(self.optimizer)]
        arrays = [p.detach().numpy() for p in net.parameters()]
        updates = iter(range(len(chunks)))

        def step(grads: list[np.ndarray]) -> None:
            for rule, indices in rules:
                rule.step([arrays[i] for i in indices], [grads[i] for i in indices])
            after_update(next(updates))

        # A diverging run overflows here; the module reports it as one DivergenceError right after the step.
        with np.errstate(over="ignore", invalid="ignore"):
            losses, logits = update_loop(
                LayerChain(net.spec, views), x.detach().cpu().numpy(), target.detach().cpu().numpy(), chunks, step
            )
        return torch.tensor([float(loss) for loss in losses], dtype=x.dtype), torch.from_numpy(np.concatenate(logits))


def run_updates(
    x: Tensor,
    target: Tensor,
    chunks_per_epoch: list[list[slice]],
    optimizer: LightningOptimizer,
    gradient_step: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    after_update: Callable[[bool], None],
    lean: bool,
    numpy_path: NumpyPath | None = None,
) -> tuple[Tensor, Tensor]:
    """Every update of one training step, in order; returns each update's loss and the logits it saw.

    ``chunks_per_epoch``: the rows of each update, grouped by notebook epoch (one group when the step is part
    of an epoch). ``gradient_step(x, target)`` leaves the gradients in ``param.grad`` and returns loss and
    logits; ``after_update(ends_epoch)`` runs after every update. ``lean`` (one process, no mixed precision)
    lets every update but the last skip Lightning's optimizer wrapper; ``numpy_path`` then runs them on NumPy.
    """
    chunks = [rows for group in chunks_per_epoch for rows in group]
    epoch_ends, last = set(), -1
    for group in chunks_per_epoch:
        last += len(group)
        epoch_ends.add(last)
    loss_parts: list[Tensor] = []
    logit_parts: list[Tensor] = []
    first = 0
    if lean and numpy_path is not None and len(chunks) > 1:
        first = len(chunks) - 1  # the step's last update goes through LightningOptimizer.step below
        losses, logits = numpy_path.run(x, target, chunks[:first], lambda i: after_update(i in epoch_ends))
        loss_parts.append(losses)
        logit_parts.append(logits)
    for i in range(first, len(chunks)):
        rows = chunks[i]

        def closure(rows: slice = rows) -> Tensor:
            optimizer.zero_grad()
            loss, z = gradient_step(x[rows], target[rows])
            loss_parts.append(loss.detach().reshape(1))
            logit_parts.append(z.detach())
            return loss

        if lean and i < len(chunks) - 1:
            closure()
            optimizer.optimizer.step()
        else:
            optimizer.step(closure=closure)
        after_update(i in epoch_ends)
    return torch.cat(loss_parts), torch.cat(logit_parts)
