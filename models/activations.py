"""Hidden-layer activations with their hand-derived derivatives.

Each derivative is written from the pre-activation ``z`` and the output ``a = f(z)`` that the
forward pass already kept, so backward recomputes nothing expensive.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.spec import Activation


def activate(name: Activation, z: Tensor, leaky_slope: float = 0.01) -> Tensor:
    """a = f(z), elementwise."""
    if name == "sigmoid":
        return torch.sigmoid(z)  # stable for large |z|: never evaluates exp of a positive number
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.clamp_min(z, 0.0)
    if name == "leaky_relu":
        return torch.where(z > 0, z, leaky_slope * z)
    if name == "identity":
        return z
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(name: Activation, z: Tensor, a: Tensor, leaky_slope: float = 0.01) -> Tensor:
    """f'(z), elementwise, from the cached z and a = f(z).

    ReLU and leaky ReLU take the derivative at the kink z == 0 to be the left one (0 and slope),
    as autograd does.
    """
    if name == "sigmoid":
        return a * (1.0 - a)  # sigma' = sigma (1 - sigma)
    if name == "tanh":
        return 1.0 - a * a  # tanh' = 1 - tanh^2
    if name == "relu":
        return (z > 0).to(z.dtype)
    if name == "leaky_relu":
        return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, leaky_slope))
    if name == "identity":
        return torch.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")
