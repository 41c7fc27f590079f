"""The hand-derived net: forward keeps what backward needs; backward is matrix formulas only.

Nothing here builds an autograd graph: the torch path runs under ``torch.no_grad()``. The formulas
are plain functions of a weight list, so they run unchanged on torch tensors or on NumPy views of
the same parameters (the CPU fast path, :mod:`models.block_updates`).

Notation for layer k (N examples, fan_in -> fan_out):
    A_{k-1} (N, fan_in)   input to the layer (A_0 = X)
    W_k     (fan_out, fan_in), b_k (fan_out,)
    Z_k = A_{k-1} @ W_k.T + b_k        (N, fan_out)
    A_k = f(Z_k)                        hidden layers only
Backward, from dZ_L given by the fused head gradient:
    dW_k = dZ_k.T @ A_{k-1} (+ l2 * W_k)    (fan_out, fan_in)
    db_k = dZ_k.sum(0)                      (fan_out,)
    dA_{k-1} = dZ_k @ W_k                   (N, fan_in)
    dZ_{k-1} = dA_{k-1} * f'(Z_{k-1})       (N, fan_in)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from models.activations import activate, activation_derivative
from models.base_net import MLPParameters, l2_penalty
from models.heads import loss_and_output_gradient
from models.spec import MLPSpec

Weights = list[tuple[Any, Any]]  # per layer: W (fan_out, fan_in) and b (fan_out,) or None


@dataclass
class ForwardCache:
    inputs: list[Any] = field(default_factory=list)  # A_{k-1} for every layer k
    pre_activations: list[Any] = field(default_factory=list)  # Z_k for every hidden layer k
    activations: list[Any] = field(default_factory=list)  # A_k = f(Z_k) for every hidden layer k
    logits: Any = None  # Z_L, the output pre-activations (N, K)
    output_gradient: Any = None  # dL/dZ_L, set by loss_and_cache


def forward_with_cache(spec: MLPSpec, weights: Weights, x: Any) -> ForwardCache:
    cache = ForwardCache()
    a = x  # (N, fan_in of layer 1)
    last = len(weights) - 1
    for k, (w, b) in enumerate(weights):
        cache.inputs.append(a)
        z = a @ w.T  # (N, fan_out)
        if b is not None:
            z = z + b
        if k == last:
            cache.logits = z
            break
        a = activate(spec.activation, z, spec.leaky_slope)
        cache.pre_activations.append(z)
        cache.activations.append(a)
    return cache


def loss_and_cache(spec: MLPSpec, weights: Weights, x: Any, target: Any) -> tuple[Any, ForwardCache]:
    """Loss (with the L2 penalty) and the cache that :func:`gradients` consumes."""
    cache = forward_with_cache(spec, weights, x)
    loss, cache.output_gradient = loss_and_output_gradient(spec.head, cache.logits, target, spec.reduction)
    if spec.l2:
        loss = loss + l2_penalty(spec.l2, [w for w, _ in weights])
    return loss, cache


def gradients(spec: MLPSpec, weights: Weights, cache: ForwardCache) -> list[Any]:
    """Hand-derived dL/dparam for every parameter, in parameter order (W1, b1, W2, ...)."""
    assert cache.output_gradient is not None, "call loss_and_cache first"
    dz = cache.output_gradient  # (N, K)
    per_layer: list[list[Any]] = []
    for k in range(len(weights) - 1, -1, -1):
        w, b = weights[k]
        dw = dz.T @ cache.inputs[k]  # (fan_out, fan_in)
        if spec.l2:
            dw = dw + spec.l2 * w
        per_layer.append([dw] if b is None else [dw, dz.sum(0)])  # db: (fan_out,)
        if k > 0:
            deriv = activation_derivative(
                spec.activation, cache.pre_activations[k - 1], cache.activations[k - 1], spec.leaky_slope
            )
            dz = (dz @ w) * deriv  # dA_{k-1} (N, fan_in) times f'(Z_{k-1})
    return [g for grads in reversed(per_layer) for g in grads]


class ManualMLP(MLPParameters):
    """The parameters of :class:`MLPParameters` driven by the hand-derived functions above."""

    def weights(self) -> Weights:
        return [(layer.weight, layer.bias) for layer in self.layers]

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations, shape (N, K)."""
        return forward_with_cache(self.spec, self.weights(), x).logits

    @torch.no_grad()
    def loss_and_cache(self, x: Tensor, target: Tensor) -> tuple[Tensor, ForwardCache]:
        return loss_and_cache(self.spec, self.weights(), x, target)

    @torch.no_grad()
    def gradients(self, cache: ForwardCache) -> list[Tensor]:
        """Hand-derived dL/dparam for every parameter, in ``self.parameters()`` order."""
        return gradients(self.spec, self.weights(), cache)
