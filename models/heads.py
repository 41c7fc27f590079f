"""Output heads: loss, its fused gradient with respect to the last pre-activation, and predictions.

Shapes: ``z`` is (N, K) output pre-activations; targets are (N,) class indices for softmax_ce,
(N,) or (N, 1) 0/1 labels for sigmoid_bce and (N, K) values for the mse heads. The loss and its
gradient accept torch tensors or NumPy arrays (see :mod:`models.array_ops`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from models.array_ops import ops_for
from models.spec import Head, Reduction


def output_activation(head: Head, z: Tensor) -> Tensor:
    """What the network outputs to a user: class probabilities or regression values."""
    if head == "softmax_ce":
        return torch.softmax(z, dim=1)
    if head in ("sigmoid_bce", "mse_sigmoid"):
        return torch.sigmoid(z)
    return z


def loss_and_output_gradient(head: Head, z: Any, target: Any, reduction: Reduction) -> tuple[Any, Any]:
    """Per-batch loss and dL/dz, derived by hand and fused so no log(0) or exp overflow can occur."""
    ops = ops_for(z)
    n = z.shape[0]
    scale = 1.0 / n if reduction == "mean" else 1.0  # d(loss) / d(per-example loss)
    if head == "softmax_ce":
        shifted = z - ops.row_max(z)  # (N, K), max 0 per row: exp cannot overflow
        log_p = shifted - ops.xp.log(ops.row_sum(ops.xp.exp(shifted)))  # log-softmax
        rows, cols = ops.arange_like(n, z), ops.as_index(target.reshape(-1))
        per_example = -log_p[rows, cols]  # (N,)
        dz = ops.xp.exp(log_p)  # softmax + CE: dL/dz = (P - Y) / N
        dz[rows, cols] -= 1.0
        dz *= scale
    elif head == "sigmoid_bce":
        y = ops.cast_like(target.reshape(z.shape), z)  # (N, 1)
        # -[y log s(z) + (1-y) log(1-s(z))] = max(z, 0) - z y + log(1 + exp(-|z|))
        per_example = (ops.relu(z) - z * y + ops.xp.log1p(ops.xp.exp(-ops.xp.abs(z)))).sum(1)
        dz = (ops.sigmoid(z) - y) * scale  # sigmoid + BCE: dL/dz = (s(z) - y) / N
    elif head == "mse":
        err = z - ops.cast_like(target.reshape(z.shape), z)  # (N, K)
        per_example = 0.5 * (err * err).sum(1)
        dz = err * scale  # d(1/2 e^2)/dz = e
    elif head == "mse_sigmoid":
        out = ops.sigmoid(z)
        err = out - ops.cast_like(target.reshape(z.shape), z)
        per_example = 0.5 * (err * err).sum(1)
        dz = err * out * (1.0 - out) * scale  # the delta rule
    else:
        raise ValueError(f"unknown head {head!r}")
    loss = per_example.mean() if reduction == "mean" else per_example.sum()
    return loss, dz


def predicted_classes(head: Head, z: Tensor) -> Tensor:
    """Class index per row for the classification heads."""
    if head == "softmax_ce":
        return z.argmax(dim=1)
    if head == "sigmoid_bce":
        return (z.reshape(-1) > 0).long()  # s(z) > 0.5
    raise ValueError(f"head {head!r} is a regression head and has no classes")
