"""Inverted dropout: keep each unit with probability 1 - p and scale it by 1 / (1 - p) while training.

The mask comes from the net's own generator, so the manual and native nets, seeded alike, drop the
same units, and a checkpoint that stores the generator resumes the same masks. Shapes: A and its
mask (M?, N, features).
"""

from __future__ import annotations

import torch
from torch import Tensor


def dropout_mask(p: float, shape: torch.Size, like: Tensor, generator: torch.Generator) -> Tensor:
    """Entries 0 or 1 / (1 - p), drawn on the generator's device and moved to ``like``'s."""
    keep = 1.0 - p
    draw = torch.rand(shape, generator=generator, dtype=like.dtype, device=generator.device)
    return ((draw < keep).to(like.dtype) / keep).to(like.device)


class Dropout:
    """The mask is drawn in ``forward`` (training only) and multiplies the gradient in ``backward``."""

    params: list[Tensor] = []

    def __init__(self, p: float, generator: torch.Generator) -> None:
        self.p, self.generator = p, generator
        self.training = True  # set by the net: evaluation keeps every unit
        self.mask: Tensor | None = None

    def forward(self, a: Tensor) -> Tensor:
        if not self.training or not self.p:
            self.mask = None
            return a
        self.mask = dropout_mask(self.p, a.shape, a, self.generator)
        return a * self.mask  # (M?, N, features)

    def backward(self, da: Tensor) -> Tensor:
        return da if self.mask is None else da * self.mask  # dA_in = dA_out * mask
