"""The hand-derived net: forward keeps what backward needs; backward is matrix formulas only.

Nothing here builds an autograd graph: every method runs under ``torch.no_grad()``.

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

from dataclasses import dataclass

import torch
from torch import Tensor

from models.activations import activate, activation_derivative
from models.base_net import MLPParameters
from models.heads import loss_and_output_gradient


@dataclass
class ForwardCache:
    inputs: list[Tensor]  # A_{k-1} for every layer k
    pre_activations: list[Tensor]  # Z_k for every hidden layer k
    activations: list[Tensor]  # A_k = f(Z_k) for every hidden layer k
    logits: Tensor | None = None  # Z_L, the output pre-activations (N, K)
    output_gradient: Tensor | None = None  # dL/dZ_L, set by loss_and_cache


class ManualMLP(MLPParameters):
    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations, shape (N, K); keeps nothing."""
        return self.forward_with_cache(x)[0]

    @torch.no_grad()
    def forward_with_cache(self, x: Tensor) -> tuple[Tensor, ForwardCache]:
        spec = self.spec
        cache = ForwardCache(inputs=[], pre_activations=[], activations=[])
        a = x  # (N, fan_in of layer 1)
        for k, layer in enumerate(self.layers):
            cache.inputs.append(a)
            z = a @ layer.weight.T  # (N, fan_out)
            if layer.bias is not None:
                z = z + layer.bias
            if k == len(self.layers) - 1:
                cache.logits = z
                return z, cache
            a = activate(spec.activation, z, spec.leaky_slope)
            cache.pre_activations.append(z)
            cache.activations.append(a)
        raise AssertionError("unreachable: a spec always has an output layer")

    @torch.no_grad()
    def loss_and_cache(self, x: Tensor, target: Tensor) -> tuple[Tensor, ForwardCache]:
        """Loss (with the L2 penalty) and the cache that :meth:`gradients` consumes."""
        z, cache = self.forward_with_cache(x)
        loss, cache.output_gradient = loss_and_output_gradient(self.spec.head, z, target, self.spec.reduction)
        if self.spec.l2:
            loss = loss + self.l2_penalty()
        return loss, cache

    @torch.no_grad()
    def gradients(self, cache: ForwardCache) -> list[Tensor]:
        """Hand-derived dL/dparam for every parameter, in ``self.parameters()`` order."""
        spec = self.spec
        assert cache.output_gradient is not None, "call loss_and_cache first"
        dz = cache.output_gradient  # (N, K)
        per_layer: list[list[Tensor]] = []
        for k in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[k]
            a_prev = cache.inputs[k]  # (N, fan_in)
            dw = dz.T @ a_prev  # (fan_out, fan_in)
            if spec.l2:
                dw = dw + spec.l2 * layer.weight
            grads = [dw]
            if layer.bias is not None:
                grads.append(dz.sum(0))  # (fan_out,)
            per_layer.append(grads)
            if k > 0:
                da_prev = dz @ layer.weight  # (N, fan_in)
                deriv = activation_derivative(
                    spec.activation, cache.pre_activations[k - 1], cache.activations[k - 1], spec.leaky_slope
                )
                dz = da_prev * deriv  # (N, fan_in)
        return [g for grads in reversed(per_layer) for g in grads]
