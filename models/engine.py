"""Many optimiser updates inside one Lightning training step: the one entry point is :func:`run_updates`.

Lightning costs milliseconds per ``training_step``; with the notebooks' batch size 1, or their
1,000 epochs of a 3-row table, that overhead dwarfs the arithmetic. So a step may receive a block
of rows and make one update per ``rows_per_update`` rows, in order: the result is exactly that of
one step per small batch. Every update but the block's last runs on the plain ``torch.optim``
optimizer (``LightningOptimizer.optimizer``); the last goes through ``LightningOptimizer.step`` so
that Lightning's hooks run once per step and ``trainer.global_step`` counts Lightning steps. Under
DDP or mixed precision every update goes through ``LightningOptimizer.step``.

For tiny dense nets on the CPU with SGD, the hand-derived updates run on NumPy views of the same
parameters (NumPy's per-call overhead is several times lower than torch's); the SGD rule there
follows ``torch.optim.SGD`` formula for formula and shares its momentum buffers.

A step may also hold several notebook epochs (``epoch_rows``, see ``MLPModule.epochs_per_step``):
chunks are then cut per epoch, never across an epoch boundary, and a per-epoch learning-rate
schedule steps after each epoch's last update, exactly as it would between one-epoch steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

import numpy as np
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.core.optimizer import LightningOptimizer
from threadpoolctl import threadpool_limits
from torch import Tensor

from models.layers.xp import Array
from models.manual_net import LayerChain
from models.schedules import updates_per_batch

if TYPE_CHECKING:
    from models.lightning_modules import MLPModule

# Above this many parameters torch's vectorised kernels beat NumPy's lower call overhead.
NUMPY_PATH_MAX_PARAMETERS = 4096


def one_thread_for_tiny_nets(module: MLPModule) -> Callable[[], None] | None:
    """On the CPU, a net of at most NUMPY_PATH_MAX_PARAMETERS runs torch and BLAS on one thread.

    Its matrices are a few rows wide: a second thread never pays, and on a busy 2-core machine waiting
    for it tripled a 1,000-epoch fit. Returns what restores the previous thread counts, or None.
    """
    on_cpu = isinstance(module.trainer.accelerator, CPUAccelerator)
    if not on_cpu or sum(p.numel() for p in module.net.parameters()) > NUMPY_PATH_MAX_PARAMETERS:
        return None
    torch_threads = torch.get_num_threads()
    blas = threadpool_limits(limits=1, user_api="blas")
    torch.set_num_threads(1)

    def restore() -> None:
        torch.set_num_threads(torch_threads)
        blas.restore_original_limits()

    return restore


def row_chunks(n_rows: int, rows_per_update: int | None, epoch_rows: Sequence[int] | None = None) -> list[list[slice]]:
    """The rows of each update, grouped by notebook epoch (one group when ``epoch_rows`` is None).

    Each epoch is cut on its own, so no update mixes two epochs' rows; ``rows_per_update=None`` makes
    one update per epoch (per step without ``epoch_rows``).
    """
    epochs = [n_rows] if epoch_rows is None else list(epoch_rows)
    if sum(epochs) != n_rows:
        raise ValueError(f"epoch_rows {epochs} add up to {sum(epochs)}, but the step has {n_rows} rows")
    groups, first = [], 0
    for rows in epochs:
        size = rows_per_update or rows
        if rows <= size:  # one update (single-example SGD, a full batch): the common case, kept cheap
            groups.append([slice(first, first + rows)])
        else:  # the last update of an epoch may be short
            groups.append([slice(start, min(start + size, first + rows)) for start in range(first, first + rows, size)])
        first += rows
    return groups


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


def numpy_path_applies(module: MLPModule, optimizer: torch.optim.Optimizer) -> bool:
    """Plain CPU runs of small dense manual nets without dropout, with torch.optim.SGD."""
    params = list(module.net.parameters())
    spec = module.net.spec
    return (
        module.hand_derived
        and module.trainer.world_size == 1
        and not spec.conv_channels
        and not spec.dropout
        and not spec.batch_norm  # the NumPy path carries no running statistics
        and type(optimizer) is torch.optim.SGD
        and all(p.device.type == "cpu" and p.dtype in (torch.float32, torch.float64) for p in params)
        and sum(p.numel() for p in params) <= NUMPY_PATH_MAX_PARAMETERS
        and not any(group.get("maximize") or group.get("differentiable") for group in optimizer.param_groups)
    )


def run_updates(
    module: MLPModule, x: Tensor, target: Tensor, epoch_rows: Sequence[int] | None = None
) -> tuple[Tensor, Tensor]:
    """Every update of one training step, in order; returns each update's loss and the logits it saw.

    With ``epoch_rows`` the step holds consecutive notebook epochs of those many rows each: their
    updates are cut per epoch and the per-epoch schedule steps after each epoch's last update.
    """
    optimizer = module.optimizers()
    assert isinstance(optimizer, LightningOptimizer)
    groups = row_chunks(x.shape[0], module.rows_per_update, epoch_rows)
    chunks = [rows for group in groups for rows in group]
    epoch_ends = set() if epoch_rows is None else {end - 1 for end in accumulate(len(group) for group in groups)}

    def after_update(i: int) -> None:
        module.step_lr_schedule("step")
        if i in epoch_ends:
            module.step_lr_schedule("epoch")

    trainer = module.trainer
    lean = trainer.world_size == 1 and not str(trainer.precision).endswith("mixed")
    loss_parts: list[Tensor] = []
    logit_parts: list[Tensor] = []
    first = 0
    if lean and len(chunks) > 1 and numpy_path_applies(module, optimizer.optimizer):
        first = len(chunks) - 1  # the step's last update goes through LightningOptimizer.step below
        losses, logits = _numpy_updates(module, optimizer.optimizer, x, target, chunks[:first], after_update)
        loss_parts.append(losses)
        logit_parts.append(logits)
    for i in range(first, len(chunks)):
        rows = chunks[i]

        def closure(rows: slice = rows) -> Tensor:
            optimizer.zero_grad()
            loss, z = module.gradient_step(x[rows], target[rows])
            loss_parts.append(loss.detach().reshape(1))
            logit_parts.append(z.detach())
            return loss

        if lean and i < len(chunks) - 1:
            closure()
            optimizer.optimizer.step()
        else:
            optimizer.step(closure=closure)
        after_update(i)
    return torch.cat(loss_parts), torch.cat(logit_parts)


class NumpySGD:
    """torch.optim.SGD's update rule on NumPy views of the parameters and of its momentum buffers."""

    def __init__(self, optimizer: torch.optim.SGD) -> None:
        self.optimizer = optimizer
        self.groups = [(group, [p.detach().numpy() for p in group["params"]]) for group in optimizer.param_groups]

    def step(self, grads_by_param: dict[int, np.ndarray]) -> None:
        for group, views in self.groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for param, view in zip(group["params"], views):
                grad = grads_by_param[id(param)]
                if weight_decay:
                    grad = grad + weight_decay * view
                if momentum:
                    state = self.optimizer.state[param]
                    if state.get("momentum_buffer") is None:
                        state["momentum_buffer"] = torch.from_numpy(grad.copy())
                    else:
                        buf = state["momentum_buffer"].numpy()
                        buf *= momentum
                        buf += (1 - dampening) * grad
                    buf = state["momentum_buffer"].numpy()
                    grad = grad + momentum * buf if nesterov else buf
                view -= lr * grad


def update_loop(
    chain: LayerChain, x: Array, target: Array, chunks: list[slice], step: Callable[[list[Array]], None]
) -> tuple[list[Array], list[Array]]:
    """The hand-derived updates, one per chunk of rows (axis -2): loss, gradients, ``step(gradients)``.

    Serves the NumPy path of one net and the sweep's stacks alike (there ``chain`` holds weights with
    a member dimension and each loss is one per member). Returns every update's loss and logits.
    """
    labels = target.ndim < x.ndim  # class labels (M?, N), else targets (M?, N, K)
    losses, logits = [], []
    for rows in chunks:
        losses.append(chain.loss(x[..., rows, :], target[..., rows] if labels else target[..., rows, :]))
        step(chain.backward())
        logits.append(chain.z)
    return losses, logits


def _numpy_updates(
    module: MLPModule,
    optimizer: torch.optim.SGD,
    x: Tensor,
    target: Tensor,
    chunks: list[slice],
    after_update: Callable[[int], None],
) -> tuple[Tensor, Tensor]:
    """Hand-derived SGD updates on NumPy views of the parameters, one per chunk of rows."""
    net = module.net
    params = list(net.parameters())
    views = [(w.detach().numpy(), None if b is None else b.detach().numpy()) for w, b in net.weights()]
    sgd = NumpySGD(optimizer)

    def step(grads: list[np.ndarray]) -> None:
        sgd.step({id(p): g for p, g in zip(params, grads)})
        after_update(next(updates))

    updates = iter(range(len(chunks)))
    # A diverging run overflows here; the module reports it as one DivergenceError right after the step.
    with np.errstate(over="ignore", invalid="ignore"):
        losses, logits = update_loop(
            LayerChain(net.spec, views), x.detach().cpu().numpy(), target.detach().cpu().numpy(), chunks, step
        )
    return torch.tensor([float(loss) for loss in losses], dtype=x.dtype), torch.from_numpy(np.concatenate(logits))
