"""The torch-native net: ``torch.nn`` layers and torch's losses; autograd derives every gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base_net import MLPParameters, l2_penalty
from models.layers.dropout import dropout_mask


class NativeMLP(MLPParameters):
    def _hidden(self, z: Tensor) -> Tensor:
        name = self.spec.activation
        if name == "sigmoid":
            return torch.sigmoid(z)
        if name == "tanh":
            return torch.tanh(z)
        if name == "relu":
            return F.relu(z)
        if name == "leaky_relu":
            return F.leaky_relu(z, self.spec.leaky_slope)
        return z

    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations (logits for the classification heads), shape (N, K)."""
        spec = self.spec
        if spec.conv_channels:
            assert spec.image_shape is not None
            x = x.reshape(*x.shape[:-1], *spec.image_shape)
            for conv in self.convs:
                x = F.max_pool2d(self._hidden(conv(x)), 2)
            x = x.flatten(-3)
        for k, layer in enumerate(self.layers[:-1]):
            z = layer(x)
            x = self._hidden(self.norms[k](z) if spec.batch_norm else z)
            if self.training and spec.dropout:
                x = x * dropout_mask(spec.dropout, x.shape, x, self.dropout_generator)
        return self.layers[-1](x)

    def loss(self, z: Tensor, target: Tensor) -> Tensor:
        """The head's loss from torch's own functions, plus the L2 penalty."""
        spec = self.spec
        if spec.head == "softmax_ce":
            loss = F.cross_entropy(z, target.long(), reduction=spec.reduction)
        else:
            y = target.reshape(z.shape).to(z.dtype)
            if spec.head == "sigmoid_bce":
                per_example = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(1)
            else:
                out = torch.sigmoid(z) if spec.head == "mse_sigmoid" else z
                per_example = 0.5 * F.mse_loss(out, y, reduction="none").sum(1)
            loss = per_example.mean() if spec.reduction == "mean" else per_example.sum()
        return loss + l2_penalty(spec.l2, [w for w, _ in self.weights()]) if spec.l2 else loss
