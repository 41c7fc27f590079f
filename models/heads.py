"""Output heads: loss, its fused gradient with respect to the last pre-activation, and predictions.

Shapes: ``z`` is (N, K) output pre-activations; targets are (N,) class indices for softmax_ce,
(N,) or (N, 1) 0/1 labels for sigmoid_bce and (N, K) values for the mse heads.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.spec import Head, Reduction


def _reduce(per_example: Tensor, reduction: Reduction) -> Tensor:
    return per_example.mean() if reduction == "mean" else per_example.sum()


def _scale(n: int, reduction: Reduction) -> float:
    """d(loss)/d(per-example loss): 1/N for a mean, 1 for a sum."""
    return 1.0 / n if reduction == "mean" else 1.0


def _as_column(target: Tensor, like: Tensor) -> Tensor:
    return target.reshape(like.shape).to(like.dtype)


def output_activation(head: Head, z: Tensor) -> Tensor:
    """What the network outputs to a user: class probabilities or regression values."""
    if head == "softmax_ce":
        return torch.softmax(z, dim=1)
    if head in ("sigmoid_bce", "mse_sigmoid"):
        return torch.sigmoid(z)
    return z


def loss_and_output_gradient(head: Head, z: Tensor, target: Tensor, reduction: Reduction) -> tuple[Tensor, Tensor]:
    """Loss and dL/dz, derived by hand and fused so no log(0) or exp overflow can occur."""
    n = z.shape[0]
    scale = _scale(n, reduction)
    if head == "softmax_ce":
        log_p = torch.log_softmax(z, dim=1)  # (N, K), stable: subtracts max(z) inside
        per_example = -log_p.gather(1, target.long().view(-1, 1)).squeeze(1)  # (N,)
        one_hot = torch.zeros_like(z).scatter_(1, target.long().view(-1, 1), 1.0)  # (N, K)
        dz = (log_p.exp() - one_hot) * scale  # softmax + CE: dL/dz = (P - Y) / N
        return _reduce(per_example, reduction), dz
    if head == "sigmoid_bce":
        y = _as_column(target, z)  # (N, 1)
        # -[y log s(z) + (1-y) log(1-s(z))] = max(z, 0) - z y + log(1 + exp(-|z|))
        per_example = (torch.clamp_min(z, 0.0) - z * y + torch.log1p(torch.exp(-z.abs()))).sum(1)
        dz = (torch.sigmoid(z) - y) * scale  # sigmoid + BCE: dL/dz = (s(z) - y) / N
        return _reduce(per_example, reduction), dz
    if head == "mse":
        y = _as_column(target, z)
        err = z - y  # (N, K)
        return _reduce(0.5 * (err * err).sum(1), reduction), err * scale  # d(1/2 e^2)/dz = e
    if head == "mse_sigmoid":
        y = _as_column(target, z)
        o = torch.sigmoid(z)
        err = o - y
        return _reduce(0.5 * (err * err).sum(1), reduction), err * o * (1.0 - o) * scale  # delta rule
    raise ValueError(f"unknown head {head!r}")


def predicted_classes(head: Head, z: Tensor) -> Tensor:
    """Class index per row for the classification heads."""
    if head == "softmax_ce":
        return z.argmax(dim=1)
    if head == "sigmoid_bce":
        return (z.reshape(-1) > 0).long()  # s(z) > 0.5
    raise ValueError(f"head {head!r} is a regression head and has no classes")
