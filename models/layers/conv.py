"""Convolution (im2col), 2x2 max pooling and flattening, each with its backward pass below its forward.

Torch tensors only (the NumPy path serves tiny dense nets). The images may carry leading dimensions
before (N, C, H, W); the kernels are one net's (a sweep stacks dense nets only). Notation for one convolution
(C -> O channels, k x k kernel, stride 1, zero padding p):
    x     (..., N, C, H, W)           input
    W     (O, C, k, k), b (O,)        W_flat = W.reshape(O, C k k)
    Ho = H + 2p - k + 1, Wo = W + 2p - k + 1, L = Ho Wo kernel positions
    cols = im2col(x)                  (..., N, C k k, L)   column l holds the patch under position l
    Z = W_flat @ cols + b             (..., N, O, L) -> (..., N, O, Ho, Wo)
so backward is the dense layer's, per position:
    dW_flat = sum_n dZ_n @ cols_n^T   (O, C k k)
    db      = sum over n, Ho, Wo      (O,)
    dcols   = W_flat^T @ dZ           (..., N, C k k, L)
    dx      = col2im(dcols)           (..., N, C, H, W)
col2im is im2col's adjoint: a pixel inside several patches receives the sum of their gradients,
and what lands on the zero padding is dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def im2col(x: Tensor, k: int, padding: int) -> Tensor:
    """(..., C, H, W) -> cols (..., C k k, Ho Wo), F.unfold's layout, from a strided view of the padded
    input (patch (i, j) of channel c is x_pad[..., c, i:i+Ho, j:j+Wo]); one copy, cheaper than F.unfold's."""
    *lead, c, h, w = x.shape
    x = F.pad(x, (padding,) * 4) if padding else x
    h_out, w_out = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    patches = x.unfold(-2, k, 1).unfold(-2, k, 1)  # view (..., C, Ho, Wo, k, k)
    n_lead = len(lead)
    order = (*range(n_lead), n_lead, n_lead + 3, n_lead + 4, n_lead + 1, n_lead + 2)  # (..., C, k, k, Ho, Wo)
    return patches.permute(order).reshape(*lead, c * k * k, h_out * w_out)


def col2im(dcols: Tensor, input_hw: tuple[int, int], k: int, padding: int) -> Tensor:
    """The adjoint of :func:`im2col` (F.fold): each kernel offset (i, j) adds its slice of dcols back
    onto the pixels it was read from; the padding's share is dropped."""
    *lead, ckk, _ = dcols.shape
    c, (h, w) = ckk // (k * k), input_hw
    h_out, w_out = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    dcols = dcols.reshape(*lead, c, k, k, h_out, w_out)
    dx = dcols.new_zeros(*lead, c, h + 2 * padding, w + 2 * padding)
    for i in range(k):
        for j in range(k):
            dx[..., i : i + h_out, j : j + w_out] += dcols[..., i, j, :, :]
    return dx[..., padding : padding + h, padding : padding + w]


class Conv2d:
    """Stride-1 convolution as one matrix product per example; ``grads`` = [dW, db] after backward."""

    def __init__(
        self, weight: Tensor, bias: Tensor | None, padding: int, l2: float = 0.0, need_input_grad: bool = True
    ) -> None:
        self.weight, self.bias, self.padding, self.l2 = weight, bias, padding, l2
        self.need_input_grad = need_input_grad  # False for the first layer: dx costs as much as dW
        self.params = [weight] if bias is None else [weight, bias]
        self.grads: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        out_channels, in_channels, k, k2 = self.weight.shape
        if in_channels != x.shape[-3] or k != k2:
            raise ValueError(f"weight {tuple(self.weight.shape)} does not fit input {tuple(x.shape)}")
        self.input_hw = (x.shape[-2], x.shape[-1])
        self.cols = im2col(x, k, self.padding)  # (..., N, C k k, L)
        z = self.weight.reshape(out_channels, -1) @ self.cols  # (O, C k k) @ (..., N, C k k, L) -> (..., N, O, L)
        if self.bias is not None:
            z = z + self.bias[:, None]  # (O, 1) over N and L
        h_out, w_out = (s + 2 * self.padding - k + 1 for s in self.input_hw)
        return z.reshape(*z.shape[:-1], h_out, w_out)  # (..., N, O, Ho, Wo)

    def l2_penalty(self) -> Tensor:
        return 0.5 * self.l2 * (self.weight * self.weight).sum()  # l2/2 * sum K^2

    def backward(self, dz: Tensor) -> Tensor | None:
        out_channels, k = self.weight.shape[0], self.weight.shape[-1]
        dz = dz.reshape(*dz.shape[:-2], -1)  # (..., N, O, L)
        # sum_n dZ_n @ cols_n^T as one batched matmul and a sum: einsum costs more on the CPU.
        dw = (dz @ self.cols.mT).reshape(-1, out_channels, self.cols.shape[-2]).sum(0).reshape(self.weight.shape)
        if self.l2:
            dw = dw + self.l2 * self.weight
        db = dz.reshape(-1, out_channels, dz.shape[-1]).sum((0, 2))  # (O,)
        self.grads = [dw] if self.bias is None else [dw, db]
        if not self.need_input_grad:
            return None
        # (C k k, O) @ (B, O, L) -> (B, C k k, L) with an explicit bmm, which writes that layout directly.
        flat = dz.reshape(-1, out_channels, dz.shape[-1])
        w_t = self.weight.reshape(out_channels, -1).T
        dcols = torch.bmm(w_t.expand(flat.shape[0], *w_t.shape), flat).reshape(self.cols.shape)
        return col2im(dcols, self.input_hw, k, self.padding)  # (..., N, C, H, W), overlaps summed


class MaxPool2d:
    """Max over non-overlapping size x size windows; backward sends each gradient to its window's max.

    The cache is the row-major position of each window's FIRST maximum, the element autograd's
    F.max_pool2d picks: after a ReLU whole windows are often exactly 0, so another tie rule would
    route gradients differently from autograd.
    """

    params: list[Tensor] = []

    def __init__(self, size: int = 2) -> None:
        self.size = size

    def forward(self, a: Tensor) -> Tensor:
        s = self.size
        if a.dim() < 4 or a.shape[-2] % s or a.shape[-1] % s:
            raise ValueError(f"max pooling needs (N, C, H, W) with H and W divisible by {s}, got {tuple(a.shape)}")
        self.input_shape = a.shape
        pooled = a[..., ::s, ::s]  # each window's position 0, a strided view (..., Ho, Wo)
        self.index = torch.zeros(pooled.shape, dtype=torch.long, device=a.device)
        for position in range(1, s * s):  # row-major; a strict ">" keeps the first maximum
            di, dj = divmod(position, s)
            candidate = a[..., di::s, dj::s]
            larger = candidate > pooled
            pooled = torch.where(larger, candidate, pooled)
            self.index.masked_fill_(larger, position)
        return pooled.contiguous()

    def backward(self, dout: Tensor) -> Tensor:
        s = self.size
        da = dout.new_zeros(self.input_shape)  # (..., H, W)
        for position in range(s * s):
            di, dj = divmod(position, s)
            da[..., di::s, dj::s] = torch.where(self.index == position, dout, 0.0)
        return da


class Flatten:
    """(..., N, C, H, W) <-> (..., N, C H W) between the conv front and the dense layers."""

    params: list[Tensor] = []

    def forward(self, a: Tensor) -> Tensor:
        self.input_shape = a.shape
        return a.reshape(*a.shape[:-3], -1)

    def backward(self, da: Tensor) -> Tensor:
        return da.reshape(self.input_shape)


class Unflatten:
    """Rows of flattened pixels (..., N, C H W) as images (..., N, C, H, W) for the conv front."""

    params: list[Tensor] = []

    def __init__(self, image_shape: list[int]) -> None:
        self.image_shape = tuple(image_shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(*x.shape[:-1], *self.image_shape)

    def backward(self, dx: Tensor) -> Tensor:
        return dx.reshape(*dx.shape[:-3], -1)
