"""Dense (fully connected) layer: Z = A W^T + b, and its backward pass.

Shapes, with an optional leading member dimension M (a sweep's stacked nets; absent for one net):
    A (M?, N, in)    W (M?, out, in)    b (M?, out)    Z (M?, N, out)
A stack's batch may be shared, A (N, in) for every member. The three products are :mod:`models.layers.xp`'s, which
pick their form by shape and memory layout; the math is the same.
"""

from __future__ import annotations

from models.layers.xp import Array, affine, input_grad, members_last, weight_grad


class Dense:
    """``forward`` keeps its input A; ``backward`` turns dL/dZ into dL/dA and sets ``grads`` = [dW, db].

    ``l2`` adds the gradient of the penalty l2/2 * sum(W^2) (the net adds the penalty to the loss).
    ``need_input_grad=False`` (the first layer) skips dA, which nothing upstream wants.
    """

    def __init__(self, weight: Array, bias: Array | None, l2: float = 0.0, need_input_grad: bool = True) -> None:
        self.weight, self.bias, self.l2 = weight, bias, l2
        self.need_input_grad = need_input_grad
        self.params = [weight] if bias is None else [weight, bias]
        self.einsum = members_last(weight)  # the products' form, fixed by the weight's memory layout
        self.grads: list[Array] = []
        self.a: Array = None

    def forward(self, a: Array) -> Array:
        self.a = a  # (M?, N, in)
        return affine(a, self.weight, self.bias, self.einsum)  # Z = A @ W^T + b: (M?, N, in) @ (M?, in, out)

    def l2_penalty(self) -> Array:
        return 0.5 * self.l2 * (self.weight * self.weight).sum((-2, -1))  # l2/2 * sum W^2: (M?,)

    def backward(self, dz: Array) -> Array | None:
        dw = weight_grad(dz, self.a, self.weight, self.einsum)  # dW = dZ^T @ A: (M?, out, N) @ (M?, N, in)
        if self.l2:
            dw = dw + self.l2 * self.weight  # d(l2/2 * sum W^2)/dW = l2 * W
        self.grads = [dw] if self.bias is None else [dw, dz.sum(-2)]  # db = sum_n dZ: (M?, out)
        if not self.need_input_grad:
            return None
        return input_grad(dz, self.weight, self.einsum)  # dA = dZ @ W: (M?, N, out) @ (M?, out, in) -> (M?, N, in)
