"""Hidden-layer activations with their hand-derived derivatives (torch tensors or NumPy arrays).

Each derivative is written from the pre-activation ``z`` and the output ``a = f(z)`` that the
forward pass already kept, so backward recomputes nothing expensive.
"""

from __future__ import annotations

from typing import Any

from models.array_ops import ops_for
from models.spec import Activation


def activate(name: Activation, z: Any, leaky_slope: float = 0.01) -> Any:
    """a = f(z), elementwise."""
    ops = ops_for(z)
    if name == "sigmoid":
        return ops.sigmoid(z)  # stable for large |z|
    if name == "tanh":
        return ops.xp.tanh(z)
    if name == "relu":
        return ops.relu(z)
    if name == "leaky_relu":
        return ops.xp.where(z > 0, z, leaky_slope * z)
    if name == "identity":
        return z
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(name: Activation, z: Any, a: Any, leaky_slope: float = 0.01) -> Any:
    """f'(z), elementwise, from the cached z and a = f(z).

    ReLU and leaky ReLU take the derivative at the kink z == 0 to be the left one (0 and slope),
    as autograd does.
    """
    ops = ops_for(z)
    if name == "sigmoid":
        return a * (1.0 - a)  # sigma' = sigma (1 - sigma)
    if name == "tanh":
        return 1.0 - a * a  # tanh' = 1 - tanh^2
    if name == "relu":
        return ops.cast_like(z > 0, z)
    if name == "leaky_relu":
        return ops.xp.where(z > 0, ops.xp.ones_like(z), ops.xp.full_like(z, leaky_slope))
    if name == "identity":
        return ops.xp.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")
