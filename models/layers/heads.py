"""Output heads: the loss and dL/dZ of the last layer, fused so no log(0) or exp overflow can occur.

Shapes, with an optional leading member dimension M:
    Z (M?, N, K) output pre-activations;
    targets: class indices (M?, N) for softmax-CE, 0/1 labels (M?, N) or (M?, N, 1) for sigmoid-BCE,
    values (M?, N, K) for the MSE heads;
    loss () for one net, (M,) per member; dZ has the shape of Z.
``reduction="mean"`` averages the per-example loss over N, ``"sum"`` adds it up.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.layers import xp
from models.layers.xp import Array
from models.spec import Head, Reduction


def as_rows(target: Array, z: Array, width: int | None) -> Array:
    """Targets shaped to broadcast against Z (M?, N, K): labels (M?, N) (``width`` None) or values (M?, N, width).
    Targets without the member dimension serve every member (a sweep's shared batch)."""
    n = z.shape[-2]
    rows = (n,) if width is None else (n, width)
    if target.shape[-len(rows) :] == rows:  # already (M?, N) or (M?, N, width): the usual case, kept cheap
        return target
    members = z.shape[:-2] if math.prod(target.shape) == math.prod(z.shape[:-2]) * n * (width or 1) else ()
    return target.reshape(*members, n, *([width] if width else []))


class _Head:
    def __init__(self, reduction: Reduction = "mean") -> None:
        self.reduction = reduction

    def _reduce(self, per_entry: Array, factor: float = 1.0) -> Array:
        """Loss terms (M?, N, K) -> factor * their sum over examples and outputs (M?,), divided by N for ``mean``:
        one sum and at most one product (a NumPy call costs more than these tiny arrays' arithmetic). Keeps
        d(loss)/d(term) / factor as ``scale``."""
        self.scale = 1.0 / per_entry.shape[-2] if self.reduction == "mean" else 1.0
        total = per_entry.sum((-2, -1))
        return total if factor * self.scale == 1.0 else total * (factor * self.scale)


class SoftmaxCrossEntropy(_Head):
    """-log softmax(Z)[y]; with softmax folded in, dL/dZ = (P - Y) / N."""

    def forward(self, z: Array, target: Array) -> Array:
        shifted = z - xp.last_axis_max(z)  # (M?, N, K), max 0 per row: exp cannot overflow
        e = xp.exp(shifted)
        total = xp.last_axis_sum(e)  # (M?, N, 1)
        log_p = shifted - xp.log(total)  # log-softmax (M?, N, K)
        y = xp.one_hot_like(as_rows(target, z, None), z)  # Y, one-hot of the labels: (M?, N, K)
        loss = self._reduce(log_p * y, -1.0)  # -sum_k Y log P = -log p_y per example, then over the N examples
        dz = e / total - y  # P - Y: (M?, N, K)
        self.dz = dz if self.scale == 1.0 else dz * self.scale  # (P - Y) / N
        return loss

    def backward(self) -> Array:
        return self.dz


class SigmoidBinaryCrossEntropy(_Head):
    """-[y log s(z) + (1-y) log(1 - s(z))] on one output; dL/dz = (s(z) - y) / N."""

    def forward(self, z: Array, target: Array) -> Array:
        y = xp.cast_like(as_rows(target, z, 1), z)  # (M?, N, 1)
        # written stably as max(z, 0) - z y + log(1 + exp(-|z|)): (M?, N, 1)
        loss = self._reduce(xp.relu(z) - z * y + xp.log1p(xp.exp(-xp.absolute(z))))
        self.dz = (xp.sigmoid(z) - y) * self.scale  # (M?, N, 1)
        return loss

    def backward(self) -> Array:
        return self.dz


class MeanSquaredError(_Head):
    """1/2 |out - y|^2 with out = Z (``sigmoid_output=False``) or sigmoid(Z) (Lab 4's delta rule)."""

    def __init__(self, reduction: Reduction = "mean", sigmoid_output: bool = False) -> None:
        super().__init__(reduction)
        self.sigmoid_output = sigmoid_output

    def forward(self, z: Array, target: Array) -> Array:
        out = xp.sigmoid(z) if self.sigmoid_output else z  # (M?, N, K)
        err = out - xp.cast_like(as_rows(target, z, z.shape[-1]), z)  # (M?, N, K)
        loss = self._reduce(err * err, 0.5)  # 1/2 sum_k e_k^2 per example, then over the N examples
        dout = err if self.scale == 1.0 else err * self.scale  # d(1/2 e^2)/d out = e
        if self.sigmoid_output:
            dout *= out * (1.0 - out)  # times sigma' for the delta rule; dout is this call's own array
        self.dz = dout
        return loss

    def backward(self) -> Array:
        return self.dz


def head_layer(head: Head, reduction: Reduction) -> SoftmaxCrossEntropy | SigmoidBinaryCrossEntropy | MeanSquaredError:
    if head == "softmax_ce":
        return SoftmaxCrossEntropy(reduction)
    if head == "sigmoid_bce":
        return SigmoidBinaryCrossEntropy(reduction)
    if head in ("mse", "mse_sigmoid"):
        return MeanSquaredError(reduction, sigmoid_output=head == "mse_sigmoid")
    raise ValueError(f"unknown head {head!r}")


def output_activation(head: Head, z: Tensor) -> Tensor:
    """What the network shows a user: class probabilities, or regression values."""
    if head == "softmax_ce":
        return torch.softmax(z, dim=-1)
    if head in ("sigmoid_bce", "mse_sigmoid"):
        return torch.sigmoid(z)
    return z


def predicted_classes(head: Head, z: Tensor) -> Tensor:
    """Class index per row (M?, N) for the classification heads."""
    if head == "softmax_ce":
        return z.argmax(dim=-1)
    if head == "sigmoid_bce":
        return (z[..., 0] > 0).long()  # s(z) > 0.5
    raise ValueError(f"head {head!r} is a regression head and has no classes")
