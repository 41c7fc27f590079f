"""Hidden-layer activations, each with its hand-derived derivative right below its forward.

Each layer keeps what its derivative needs (the output for sigmoid and tanh, the sign of the input
for the ReLUs), so backward recomputes nothing. ``backward`` may overwrite the dA it is given: every
caller hands it a fresh gradient. Shapes: any, elementwise; dA and dZ have the shape of Z.
"""

from __future__ import annotations

from models.layers import xp
from models.layers.xp import Array
from models.spec import Activation


class Sigmoid:
    params: list[Array] = []

    def forward(self, z: Array) -> Array:
        self.a = xp.sigmoid(z)  # a = 1 / (1 + exp(-z)), stable for large |z|
        return self.a

    def backward(self, da: Array) -> Array:
        da *= self.a * (1.0 - self.a)  # dZ = dA * sigma (1 - sigma), in place: dA is a fresh gradient
        return da


class Tanh:
    params: list[Array] = []

    def forward(self, z: Array) -> Array:
        self.a = xp.tanh(z)
        return self.a

    def backward(self, da: Array) -> Array:
        da *= 1.0 - self.a * self.a  # dZ = dA * (1 - tanh^2), in place
        return da


class ReLU:
    """The derivative at the kink z == 0 is taken to be 0, as autograd does."""

    params: list[Array] = []

    def forward(self, z: Array) -> Array:
        self.positive = z > 0
        return xp.relu(z)

    def backward(self, da: Array) -> Array:
        da *= self.positive  # dZ = dA * [z > 0], in place
        return da


class LeakyReLU:
    """slope * z below 0; the derivative at z == 0 is ``slope``, as autograd's."""

    params: list[Array] = []

    def __init__(self, slope: float = 0.01) -> None:
        self.slope = slope

    def forward(self, z: Array) -> Array:
        self.positive = z > 0
        return xp.where(self.positive, z, self.slope * z)

    def backward(self, da: Array) -> Array:
        return xp.where(self.positive, da, self.slope * da)  # dZ = dA * (1 if z > 0 else slope)


class Identity:
    params: list[Array] = []

    def forward(self, z: Array) -> Array:
        return z

    def backward(self, da: Array) -> Array:
        return da


def activation_layer(name: Activation, leaky_slope: float = 0.01) -> Sigmoid | Tanh | ReLU | LeakyReLU | Identity:
    if name == "leaky_relu":
        return LeakyReLU(leaky_slope)
    layers = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "identity": Identity}
    if name not in layers:
        raise ValueError(f"unknown activation {name!r}; choose one of sigmoid, tanh, relu, leaky_relu, identity")
    return layers[name]()
