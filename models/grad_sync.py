"""Averaging hand-written gradients across DDP ranks.

DDP all-reduces gradients from hooks that autograd fires; gradients written straight into
``param.grad`` never trigger them, so the manual module calls this instead. All gradients are
flattened into one buffer per dtype/device and reduced with a single collective (bucketed, not one
call per tensor).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from datamodules.tensor_loader import rank_and_world_size


@torch.no_grad()
def all_reduce_mean_(grads: list[Tensor]) -> None:
    """In place: every tensor becomes its mean over all ranks. A no-op in a single process."""
    _, world_size = rank_and_world_size()
    if world_size == 1 or not grads:
        return
    buckets: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
    for g in grads:
        buckets.setdefault((g.dtype, g.device), []).append(g)
    for tensors in buckets.values():
        flat = torch.cat([g.reshape(-1) for g in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world_size
        for g, reduced in zip(tensors, flat.split([g.numel() for g in tensors])):
            g.copy_(reduced.view_as(g))
