"""The few operations that torch and NumPy spell differently, so each layer's math is written once.

Everything else the layers use (``@``, ``.mT``, ``.sum(-2)``, ``[..., None, :]``, elementwise
arithmetic) is spelled the same in both libraries and broadcasts over an optional leading member
dimension. The Array API standard (``array-api-compat``) would serve too; its wrappers cost a
Python call per operation, measured in ``benchmarks/array_api_cost.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Array = Any  # a torch.Tensor or a numpy.ndarray, (M?, N, features)


def is_numpy(x: Array) -> bool:
    return isinstance(x, np.ndarray)


def sigmoid(z: Array) -> Array:
    if is_numpy(z):  # exp(-z) overflows to inf for z < -709, giving the right limit 0; the update
        e = np.exp(-z)  # loops run under np.errstate, which costs more than the exp
        e += 1.0
        return np.divide(1.0, e, out=e)  # 1 / (1 + exp(-z)) in one array: a large stack's passes cost memory traffic
    return torch.sigmoid(z)


def tanh(z: Array) -> Array:
    return np.tanh(z) if is_numpy(z) else torch.tanh(z)


def relu(z: Array) -> Array:
    return np.maximum(z, 0.0) if is_numpy(z) else torch.clamp_min(z, 0.0)


def where(condition: Array, a: Array, b: Array | float) -> Array:
    return np.where(condition, a, b) if is_numpy(condition) else torch.where(condition, a, b)


def exp(z: Array) -> Array:
    return np.exp(z) if is_numpy(z) else torch.exp(z)


def log(z: Array) -> Array:
    return np.log(z) if is_numpy(z) else torch.log(z)


def log1p(z: Array) -> Array:
    return np.log1p(z) if is_numpy(z) else torch.log1p(z)


def absolute(z: Array) -> Array:
    return np.abs(z) if is_numpy(z) else torch.abs(z)


def last_axis_max(z: Array) -> Array:
    """Max over the last axis, kept as a length-1 axis: (..., K) -> (..., 1)."""
    return np.maximum.reduce(z, axis=-1, keepdims=True) if is_numpy(z) else z.amax(dim=-1, keepdim=True)


def last_axis_sum(z: Array) -> Array:
    """(..., K) -> (..., 1)."""
    return z.sum(axis=-1, keepdims=True) if is_numpy(z) else z.sum(dim=-1, keepdim=True)


def one_hot_like(index: Array, z: Array) -> Array:
    """Integer (..., N) -> 0/1 of z's shape (..., N, K) and dtype; in z's memory layout where the shapes agree,
    so that a stack laid out member-last stays so through the head."""
    if is_numpy(z):
        hot = np.empty_like(z, shape=(*index.shape, z.shape[-1]))
        return np.equal(index[..., None], np.arange(z.shape[-1]), out=hot)
    return (index[..., None].long() == torch.arange(z.shape[-1], device=z.device)).to(z.dtype)


def cast_like(a: Array, like: Array) -> Array:
    return a.astype(like.dtype, copy=False) if is_numpy(like) else a.to(like.dtype)


def members_last(a: Array) -> bool:
    """Whether a NumPy stack ``(M, ...)`` keeps its member axis innermost in memory (:mod:`models.sweep_module` lays
    out many tiny nets so). The products below then take the einsum form, one pass over all members; a stacked
    ``@`` pays per matrix, which for thousands of 3x3 matrices costs more than their arithmetic."""
    return is_numpy(a) and a.ndim == 3 and a.shape[0] > 1 and a.strides[0] == a.itemsize


def affine(a: Array, weight: Array, bias: Array | None, einsum: bool = False) -> Array:
    """Z = A W^T + b: A (M?, N, in), W (M?, out, in), b (M?, out) -> Z (M?, N, out); a stack's A may be one batch
    (N, in) that every member reads.

    The product takes the fastest form for its operands: ``einsum`` for a stack laid out member-last; for torch
    stacks reading one batch, one GEMM (N, in) @ (in, M out) (a broadcast ``@`` copies A per member); torch's fused
    ``addmm`` for one net; else ``@``.
    """
    if einsum:
        z = np.einsum("...ni,...oi->...no", a, weight)
    elif is_numpy(weight) or a.ndim == weight.ndim:
        if bias is not None and weight.ndim == 2 and not is_numpy(weight):
            return torch.addmm(bias, a, weight.T)
        z = a @ weight.mT
    else:
        members, out, fan_in = weight.shape
        every_member = weight.reshape(members * out, fan_in).T  # (in, M out)
        z = a @ every_member if bias is None else torch.addmm(bias.reshape(-1), a, every_member)
        return z.reshape(-1, members, out).transpose(0, 1)
    if bias is not None:
        z += bias[..., None, :]  # z is this call's own array
    return z


def weight_grad(dz: Array, a: Array, weight: Array, einsum: bool = False) -> Array:
    """dW = dZ^T A: dZ (M?, N, out), A (M?, N, in) or a stack's one batch (N, in) -> (M?, out, in), in the form
    :func:`affine` took (for torch stacks reading one batch, one GEMM (M out, N) @ (N, in))."""
    one_row = dz.shape[-2] == 1  # single-example SGD: dW is the outer product, a broadcast product costs less
    if einsum:  # dW laid out as W, so that the optimiser's update is one pass over both
        out = np.empty_like(weight)
        return np.multiply(dz.mT, a, out=out) if one_row else np.einsum("...no,...ni->...oi", dz, a, out=out)
    if is_numpy(weight) or a.ndim == weight.ndim:
        return dz.mT * a if one_row else dz.mT @ a
    members, rows, out = dz.shape
    return (dz.transpose(0, 1).reshape(rows, members * out).T @ a).reshape(members, out, -1)


def input_grad(dz: Array, weight: Array, einsum: bool = False) -> Array:
    """dA = dZ W: dZ (M?, N, out), W (M?, out, in) -> (M?, N, in)."""
    return np.einsum("...no,...oi->...ni", dz, weight) if einsum else dz @ weight


def sqrt(z: Array) -> Array:
    return np.sqrt(z) if is_numpy(z) else torch.sqrt(z)
