"""The hand-derived net: a chain of layers from :mod:`models.layers`, built from one :class:`MLPSpec`.

Forward runs the layers in order, each keeping its cache; backward runs them in reverse from the
head's dL/dZ, each returning the gradient for the layer before it. No autograd graph is built.
The chain is built over any weights: the net's own parameters (torch, any device), NumPy views of
them (the CPU fast path, :mod:`models.engine`), or weights with a leading member dimension.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from models.base_net import MLPParameters, NormState, Weights
from models.layers import (
    BatchNorm,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    MaxPool2d,
    Unflatten,
    activation_layer,
    head_layer,
)
from models.layers.xp import Array
from models.spec import MLPSpec


class LayerChain:
    """The layers of one spec over given weights, with the head's loss at the end.

    ``norms`` (with ``spec.batch_norm``) are the batch norms' parameters and running statistics, one per
    hidden layer; ``generator`` draws the dropout masks.
    """

    def __init__(
        self,
        spec: MLPSpec,
        weights: Weights,
        generator: torch.Generator | None = None,
        norms: list[NormState] | None = None,
    ) -> None:
        self.spec = spec
        self.layers: list[Any] = []
        n_conv = len(spec.conv_channels)
        if n_conv:
            assert spec.image_shape is not None
            self.layers.append(Unflatten(spec.image_shape))
        for j, (w, b) in enumerate(weights[:n_conv]):
            conv = Conv2d(w, b, spec.conv_padding, spec.l2, need_input_grad=j > 0)
            self.layers += [conv, activation_layer(spec.activation, spec.leaky_slope), MaxPool2d(2)]
        if n_conv:
            self.layers.append(Flatten())
        dense = weights[n_conv:]
        for k, (w, b) in enumerate(dense):
            self.layers.append(Dense(w, b, spec.l2, need_input_grad=k > 0 or n_conv > 0))
            if k < len(dense) - 1:
                if spec.batch_norm:
                    assert norms is not None, "batch norm needs the net's norms: pass norms=net.norm_states()"
                    gamma, beta, mean, var, batches = norms[k]
                    momentum, eps = spec.batch_norm_momentum, spec.batch_norm_eps
                    self.layers.append(BatchNorm(gamma, beta, mean, var, momentum, eps, batches))
                self.layers.append(activation_layer(spec.activation, spec.leaky_slope))
                if spec.dropout:
                    assert generator is not None, "dropout needs the net's generator"
                    self.layers.append(Dropout(spec.dropout, generator))
        self.head = head_layer(spec.head, spec.reduction)
        # in parameter order: conv and dense layers, then the batch norms (gamma, beta)
        self.with_params = [layer for layer in self.layers if isinstance(layer, (Conv2d, Dense))]
        self.with_params += [layer for layer in self.layers if isinstance(layer, BatchNorm)]

    def set_training(self, training: bool) -> None:
        for layer in self.layers:
            if isinstance(layer, (Dropout, BatchNorm)):
                layer.training = training

    def logits(self, x: Array) -> Array:
        """Z_L (M?, N, K): every layer's forward, in order."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, x: Array, target: Array) -> Array:
        """The head's loss plus the L2 penalty l2/2 * sum(W^2); keeps ``self.z`` (the logits)."""
        self.z = self.logits(x)
        loss = self.head.forward(self.z, target)
        if self.spec.l2:
            loss = loss + sum(layer.l2_penalty() for layer in self.layers if isinstance(layer, (Dense, Conv2d)))
        return loss

    def backward(self) -> list[Array]:
        """dL/dparam for every parameter, in parameter order (conv layers, then W1, b1, W2, ..., then each
        batch norm's gamma and beta, as :class:`MLPParameters` registers them)."""
        grad = self.head.backward()  # dL/dZ_L
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
            if grad is None:  # the first parameterised layer: nothing upstream wants dL/dinput
                break
        return [g for layer in self.with_params for g in layer.grads]


class ManualMLP(MLPParameters):
    """The parameters of :class:`MLPParameters`, driven by the hand-derived :class:`LayerChain`."""

    last_pass: LayerChain | None = None  # the latest forward_loss, whose layers backward runs in reverse

    def chain(self) -> LayerChain:
        chain = LayerChain(self.spec, self.weights(), self.dropout_generator, self.norm_states())
        chain.set_training(self.training)
        return chain

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations (N, K)."""
        return self.chain().logits(x)

    @torch.no_grad()
    def forward_loss(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """The loss and the logits; every layer keeps its cache for :meth:`backward`."""
        self.last_pass = self.chain()
        return self.last_pass.loss(x, target), self.last_pass.z

    @torch.no_grad()
    def backward(self) -> list[Tensor]:
        """Hand-derived dL/dparam of the latest :meth:`forward_loss`, in ``self.parameters()`` order."""
        assert self.last_pass is not None, "backward needs a forward_loss first"
        grads, self.last_pass = self.last_pass.backward(), None
        return grads

    def loss_and_gradients(self, x: Tensor, target: Tensor) -> tuple[Tensor, list[Tensor]]:
        loss, _ = self.forward_loss(x, target)
        return loss, self.backward()
