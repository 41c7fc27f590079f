"""Hand-derived convolution and max pooling for a LeNet-style CNN: matrix formulas, never autograd.

Everything here is a pure function of torch tensors meant to run under ``torch.no_grad()``; the
forward functions return, next to their output, the cache the matching backward function needs.
All shapes are generic, so the same code runs in float32 or float64 on any device.

Notation for a convolution layer (N examples, C -> O channels, k x k kernel, stride 1, zero padding p):
    x     (N, C, H, W)              input
    W     (O, C, k, k), b (O,)      W_flat = W.reshape(O, C*k*k)
    Ho = H + 2p - k + 1, Wo = W + 2p - k + 1, L = Ho*Wo (the number of kernel positions)
    cols = im2col(x)                (N, C*k*k, L)   column l holds the patch under position l
    Z = W_flat @ cols + b           (N, O, L) -> (N, O, Ho, Wo)
Convolution is then one matrix product per example, so backward is the familiar linear layer:
    dW_flat = sum_n dZ_n @ cols_n.T         (O, C*k*k)
    db      = dZ summed over n, Ho, Wo      (O,)
    dcols   = W_flat.T @ dZ                 (N, C*k*k, L)
    dx      = col2im(dcols)                 (N, C, H, W)
col2im is the adjoint of im2col (F.fold to im2col's F.unfold): a pixel that sits in several patches
receives the sum of their gradients, and gradients that land on the zero padding are dropped.

Max pooling (non-overlapping s x s windows, stride s) passes each window's maximum; backward sends
each upstream gradient to that one position and zero to the other s*s - 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def im2col(x: Tensor, k: int, padding: int) -> Tensor:
    """(N, C, H, W) -> cols (N, C*k*k, Ho*Wo), the layout of F.unfold, from a strided view of the padded
    input: patch (i, j) of channel c is x_pad[:, c, i:i+Ho, j:j+Wo]. One copy; about 4x faster than
    F.unfold on the CPU here."""
    n, c, h, w = x.shape
    x = F.pad(x, (padding,) * 4) if padding else x
    h_out, w_out = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    patches = x.unfold(2, k, 1).unfold(3, k, 1)  # view (N, C, Ho, Wo, k, k)
    return patches.permute(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, h_out * w_out)


def col2im(dcols: Tensor, input_hw: tuple[int, int], k: int, padding: int) -> Tensor:
    """The adjoint of :func:`im2col` (what F.fold computes): each of the k*k kernel offsets (i, j) adds
    its slice of dcols back onto the pixels it was read from; the padding's share is dropped."""
    n, ckk, _ = dcols.shape
    c, (h, w) = ckk // (k * k), input_hw
    h_out, w_out = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    dcols = dcols.reshape(n, c, k, k, h_out, w_out)
    dx = dcols.new_zeros(n, c, h + 2 * padding, w + 2 * padding)
    for i in range(k):
        for j in range(k):
            dx[:, :, i : i + h_out, j : j + w_out] += dcols[:, :, i, j]
    return dx[:, :, padding : padding + h, padding : padding + w]


def conv2d_forward(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> tuple[Tensor, Tensor]:
    """Z = W_flat @ unfold(x) + b, i.e. F.conv2d(x, W, b, padding=padding) with stride 1, as a matmul.

    Returns (Z, cols): cols, the unfolded input, is the cache :func:`conv2d_backward` needs for dW.
    """
    n, c, h, w = x.shape
    out_channels, in_channels, k, k2 = weight.shape
    if in_channels != c or k != k2:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit input {tuple(x.shape)} (need (O, C, k, k))")
    h_out, w_out = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    cols = im2col(x, k, padding)  # (N, C*k*k, L), L = Ho*Wo
    z = weight.reshape(out_channels, -1) @ cols  # (O, C*k*k) @ (N, C*k*k, L) -> (N, O, L)
    if bias is not None:
        z = z + bias[:, None]  # (O, 1) broadcast over N and L
    return z.reshape(n, out_channels, h_out, w_out), cols  # (N, O, Ho, Wo), (N, C*k*k, L)


def conv2d_backward(
    dz: Tensor,
    cols: Tensor,
    weight: Tensor,
    input_hw: tuple[int, int],
    padding: int,
    has_bias: bool,
    need_input_grad: bool = True,
) -> tuple[Tensor | None, Tensor, Tensor | None]:
    """(dx, dW, db) from dZ = dL/dZ (N, O, Ho, Wo) and the cols cached by :func:`conv2d_forward`.

    dx is None when ``need_input_grad`` is False (the first layer: nothing upstream wants it, and it
    costs as much as dW); db is None when the layer has no bias.
    """
    n, out_channels = dz.shape[:2]
    k = weight.shape[-1]
    dz = dz.reshape(n, out_channels, -1)  # (N, O, L)
    # sum_n dZ_n @ cols_n.T as one batched matmul then a sum: faster on CPU than einsum or a (O, N*L) copy.
    dw = (dz @ cols.transpose(1, 2)).sum(0).reshape(weight.shape)  # (N, O, C*k*k) -> (O, C, k, k)
    db = dz.sum((0, 2)) if has_bias else None  # (O,)
    dx = None
    if need_input_grad:
        # (C*k*k, O) @ (N, O, L) -> (N, C*k*k, L); an explicit bmm writes that layout directly, where
        # matmul's broadcasting would compute (N*L, C*k*k) and copy it into place.
        w_t = weight.reshape(out_channels, -1).T
        dcols = torch.bmm(w_t.expand(n, *w_t.shape), dz)
        dx = col2im(dcols, tuple(input_hw), k, padding)  # (N, C, H, W), overlaps summed
    return dx, dw, db


def max_pool2d_forward(a: Tensor, size: int = 2) -> tuple[Tensor, Tensor]:
    """Max over non-overlapping size x size windows; returns (pooled, index cache).

    The cache holds, per output, the row-major position (0 .. size*size - 1) inside its window of the
    FIRST maximum, which is the element F.max_pool2d's autograd picks. After ReLU whole windows are
    often exactly 0, so any other tie rule would route gradients differently from autograd.
    """
    if a.dim() != 4 or a.shape[-2] % size or a.shape[-1] % size:
        raise ValueError(f"max pooling needs (N, C, H, W) with H and W divisible by {size}, got {tuple(a.shape)}")
    # Walk the window's positions in row-major order, each a strided view (N, C, Ho, Wo); a strict ">"
    # keeps the first maximum.
    pooled = a[:, :, ::size, ::size]
    index = torch.zeros(pooled.shape, dtype=torch.long, device=a.device)
    for position in range(1, size * size):
        di, dj = divmod(position, size)
        candidate = a[:, :, di::size, dj::size]
        larger = candidate > pooled
        pooled = torch.where(larger, candidate, pooled)
        index.masked_fill_(larger, position)
    return pooled.contiguous(), index


def max_pool2d_backward(dout: Tensor, index_cache: Tensor, input_shape: tuple[int, ...], size: int = 2) -> Tensor:
    """dL/da: each window's gradient dout (N, C, Ho, Wo) goes to its cached max position, zeros elsewhere."""
    da = dout.new_zeros(input_shape)  # (N, C, H, W)
    for position in range(size * size):
        di, dj = divmod(position, size)
        da[:, :, di::size, dj::size] = torch.where(index_cache == position, dout, 0.0)
    return da
