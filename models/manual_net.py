"""The hand-derived net: forward keeps what backward needs; backward is matrix formulas only.

Nothing here builds an autograd graph: the torch path runs under ``torch.no_grad()``. The formulas
are plain functions of a weight list, so the dense ones run unchanged on torch tensors or on NumPy
views of the same parameters (the CPU fast path, :mod:`models.block_updates`).

Notation for dense layer k (N examples, fan_in -> fan_out):
    A_{k-1} (N, fan_in)   input to the layer (A_0 = X, or the flattened conv front output)
    W_k     (fan_out, fan_in), b_k (fan_out,)
    Z_k = A_{k-1} @ W_k.T + b_k        (N, fan_out)
    A_k = f(Z_k) * M_k                  hidden layers only; M_k is the dropout mask (1 without dropout)
Backward, from dZ_L given by the fused head gradient:
    dW_k = dZ_k.T @ A_{k-1} (+ l2 * W_k)    (fan_out, fan_in)
    db_k = dZ_k.sum(0)                      (fan_out,)
    dA_{k-1} = dZ_k @ W_k                   (N, fan_in)
    dZ_{k-1} = dA_{k-1} * M_{k-1} * f'(Z_{k-1})   (N, fan_in)
Conv front layer j (see :mod:`models.conv_ops` for the im2col formulas):
    Z_j = conv(A_{j-1}, K_j) + c_j      (N, C_j, H, W)
    A_j = maxpool2x2(f(Z_j))            (N, C_j, H/2, W/2)
and backward routes dA_j to each window's max, multiplies by f'(Z_j) and takes the conv's adjoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from models.activations import activate, activation_derivative
from models.base_net import MLPParameters, Weights, dropout_masks, l2_penalty
from models.conv_ops import conv2d_backward, conv2d_forward, max_pool2d_backward, max_pool2d_forward
from models.heads import loss_and_output_gradient
from models.spec import MLPSpec


@dataclass
class ConvCache:
    input_hw: tuple[int, int]  # (H, W) of the layer's input image
    columns: Tensor  # im2col of the input, (N, C_in k k, H' W')
    pre_activations: Tensor  # Z_j (N, C_out, H', W')
    activations: Tensor  # f(Z_j), before pooling
    pool_index: Tensor  # which entry of each 2x2 window was the max


@dataclass
class ForwardCache:
    inputs: list[Any] = field(default_factory=list)  # A_{k-1} for every dense layer k
    pre_activations: list[Any] = field(default_factory=list)  # Z_k for every hidden dense layer k
    activations: list[Any] = field(default_factory=list)  # f(Z_k), before the dropout mask
    masks: list[Any] | None = None  # dropout masks M_k, or None without dropout
    conv: list[ConvCache] = field(default_factory=list)  # one per conv front layer
    logits: Any = None  # Z_L, the output pre-activations (N, K)
    output_gradient: Any = None  # dL/dZ_L, set by loss_and_cache


def _conv_front(spec: MLPSpec, weights: Weights, x: Tensor, cache: ForwardCache) -> Tensor:
    """The conv layers' forward pass; returns the flattened features for the dense layers."""
    assert spec.image_shape is not None
    a = x.reshape(x.shape[0], *spec.image_shape)  # (N, C, H, W)
    for w, b in weights:
        z, columns = conv2d_forward(a, w, b, spec.conv_padding)  # (N, C_out, H', W')
        f_z = activate(spec.activation, z, spec.leaky_slope)
        pooled, pool_index = max_pool2d_forward(f_z)  # (N, C_out, H'/2, W'/2)
        cache.conv.append(ConvCache((a.shape[2], a.shape[3]), columns, z, f_z, pool_index))
        a = pooled
    return a.reshape(a.shape[0], -1)  # (N, C H W)


def forward_with_cache(spec: MLPSpec, weights: Weights, x: Any, masks: list[Any] | None = None) -> ForwardCache:
    """Forward pass keeping every intermediate; ``masks`` are dropout masks (training only)."""
    cache = ForwardCache(masks=masks)
    n_conv = len(spec.conv_channels)
    a = _conv_front(spec, weights[:n_conv], x, cache) if n_conv else x  # (N, fan_in of dense layer 1)
    dense = weights[n_conv:]
    last = len(dense) - 1
    for k, (w, b) in enumerate(dense):
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
        if masks is not None:
            a = a * masks[k]
    return cache


def loss_and_cache(
    spec: MLPSpec, weights: Weights, x: Any, target: Any, masks: list[Any] | None = None
) -> tuple[Any, ForwardCache]:
    """Loss (with the L2 penalty) and the cache that :func:`gradients` consumes."""
    cache = forward_with_cache(spec, weights, x, masks)
    loss, cache.output_gradient = loss_and_output_gradient(spec.head, cache.logits, target, spec.reduction)
    if spec.l2:
        loss = loss + l2_penalty(spec.l2, [w for w, _ in weights])
    return loss, cache


def _weight_and_bias_grads(spec: MLPSpec, w: Any, b: Any, dw: Any, db: Any) -> list[Any]:
    if spec.l2:
        dw = dw + spec.l2 * w
    return [dw] if b is None else [dw, db]


def _conv_front_gradients(spec: MLPSpec, weights: Weights, cache: ForwardCache, da: Tensor) -> list[Any]:
    """Gradients of the conv layers from dL/d(flattened conv output) ``da`` (N, C H W)."""
    layer_cache = cache.conv[-1]
    n, channels, height, width = layer_cache.activations.shape
    da = da.reshape(n, channels, height // 2, width // 2)  # dA_J, the last pooled output
    per_layer: list[list[Any]] = []
    for j in range(len(weights) - 1, -1, -1):
        w, b = weights[j]
        layer_cache = cache.conv[j]
        d_act = max_pool2d_backward(da, layer_cache.pool_index, layer_cache.activations.shape)  # (N, C, H', W')
        dz = d_act * activation_derivative(
            spec.activation, layer_cache.pre_activations, layer_cache.activations, spec.leaky_slope
        )
        da, dw, db = conv2d_backward(
            dz, layer_cache.columns, w, layer_cache.input_hw, spec.conv_padding, b is not None, need_input_grad=j > 0
        )
        per_layer.append(_weight_and_bias_grads(spec, w, b, dw, db))
    return [g for grads in reversed(per_layer) for g in grads]


def gradients(spec: MLPSpec, weights: Weights, cache: ForwardCache) -> list[Any]:
    """Hand-derived dL/dparam for every parameter, in parameter order (conv layers, then W1, b1, ...)."""
    assert cache.output_gradient is not None, "call loss_and_cache first"
    n_conv = len(spec.conv_channels)
    dense = weights[n_conv:]
    dz = cache.output_gradient  # (N, K)
    per_layer: list[list[Any]] = []
    for k in range(len(dense) - 1, -1, -1):
        w, b = dense[k]
        per_layer.append(_weight_and_bias_grads(spec, w, b, dz.T @ cache.inputs[k], dz.sum(0)))  # (fan_out, fan_in)
        if k > 0:
            da = dz @ w  # dA_{k-1} (N, fan_in)
            if cache.masks is not None:
                da = da * cache.masks[k - 1]
            deriv = activation_derivative(
                spec.activation, cache.pre_activations[k - 1], cache.activations[k - 1], spec.leaky_slope
            )
            dz = da * deriv  # times f'(Z_{k-1})
    dense_grads = [g for grads in reversed(per_layer) for g in grads]
    if not n_conv:
        return dense_grads
    return _conv_front_gradients(spec, weights[:n_conv], cache, dz @ dense[0][0]) + dense_grads


class ManualMLP(MLPParameters):
    """The parameters of :class:`MLPParameters` driven by the hand-derived functions above."""

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations, shape (N, K)."""
        return forward_with_cache(self.spec, self.weights(), x, self._masks(x)).logits

    def _masks(self, x: Tensor) -> list[Tensor] | None:
        return dropout_masks(self.spec, x.shape[0], x) if self.training and self.spec.dropout else None

    @torch.no_grad()
    def loss_and_cache(self, x: Tensor, target: Tensor) -> tuple[Tensor, ForwardCache]:
        return loss_and_cache(self.spec, self.weights(), x, target, self._masks(x))

    @torch.no_grad()
    def gradients(self, cache: ForwardCache) -> list[Tensor]:
        """Hand-derived dL/dparam for every parameter, in ``self.parameters()`` order."""
        return gradients(self.spec, self.weights(), cache)
