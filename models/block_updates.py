"""Several optimiser updates inside one Lightning step, and the NumPy fast path for them.

Lightning costs a few milliseconds per ``training_step``; with the week-4 notebook's batch size 1
that overhead dwarfs the arithmetic. A module given ``rows_per_update`` receives a block of rows per
step and applies one update per ``rows_per_update`` rows, in order, so the result is exactly that of
one step per small batch. For tiny networks on the CPU the hand-derived updates of a block run on
NumPy views of the parameters (NumPy's per-call overhead is several times lower than torch's);
SGD updates there follow ``torch.optim.SGD`` formula for formula and share its momentum buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from models.base_net import Weights
from models.manual_net import ManualMLP, gradients, loss_and_cache
from models.schedules import updates_per_batch

# Above this many parameters torch's vectorised kernels beat NumPy's lower call overhead.
NUMPY_PATH_MAX_PARAMETERS = 4096


def row_chunks(x: Tensor, target: Tensor, rows_per_update: int) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, x.shape[0], rows_per_update):
        yield x[start : start + rows_per_update], target[start : start + rows_per_update]


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


def numpy_path_applies(net: ManualMLP, optimizer: torch.optim.Optimizer, distributed: bool) -> bool:
    """The NumPy path covers plain CPU runs of dense nets without dropout with torch.optim.SGD;
    everything else uses torch."""
    params = list(net.parameters())
    return (
        not distributed
        and not net.spec.conv_channels
        and not net.spec.dropout
        and type(optimizer) is torch.optim.SGD
        and all(p.device.type == "cpu" and p.dtype in (torch.float32, torch.float64) for p in params)
        and sum(p.numel() for p in params) <= NUMPY_PATH_MAX_PARAMETERS
        and not any(group.get("maximize") or group.get("differentiable") for group in optimizer.param_groups)
    )


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


def numpy_block(
    net: ManualMLP,
    optimizer: torch.optim.SGD,
    x: Tensor,
    target: Tensor,
    rows_per_update: int,
    after_update: Callable[[], None] | None = None,
) -> tuple[Tensor, Tensor, list[np.ndarray]]:
    """Sequential hand-derived SGD updates over a block; returns every update's loss, the logits each
    update saw (before its step) and the last update's gradients. ``after_update`` runs after each
    update (a learning-rate schedule's step: the next update reads the group's new lr)."""
    spec = net.spec
    params = list(net.parameters())
    weights: Weights = [
        (layer.weight.detach().numpy(), None if layer.bias is None else layer.bias.detach().numpy())
        for layer in net.layers
    ]
    sgd = NumpySGD(optimizer)
    x_np, target_np = x.detach().cpu().numpy(), target.detach().cpu().numpy()
    losses, logits, grads = [], [], []
    for start in range(0, x_np.shape[0], rows_per_update):
        loss, cache = loss_and_cache(
            spec, weights, x_np[start : start + rows_per_update], target_np[start : start + rows_per_update]
        )
        grads = gradients(spec, weights, cache)
        sgd.step({id(p): g for p, g in zip(params, grads)})
        if after_update is not None:
            after_update()
        losses.append(float(loss))
        logits.append(cache.logits)
    return torch.tensor(losses, dtype=x.dtype), torch.from_numpy(np.concatenate(logits)), grads
