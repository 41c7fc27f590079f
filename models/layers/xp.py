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
        return 1.0 / (1.0 + np.exp(-z))  # loops run under np.errstate, which costs more than the exp
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
    return z.max(axis=-1, keepdims=True) if is_numpy(z) else z.amax(dim=-1, keepdim=True)


def last_axis_sum(z: Array) -> Array:
    """(..., K) -> (..., 1)."""
    return z.sum(axis=-1, keepdims=True) if is_numpy(z) else z.sum(dim=-1, keepdim=True)


def one_hot_like(index: Array, z: Array) -> Array:
    """Integer (..., N) -> 0/1 of z's shape (..., N, K) and dtype."""
    if is_numpy(z):
        return (index[..., None] == np.arange(z.shape[-1])).astype(z.dtype)
    return (index[..., None].long() == torch.arange(z.shape[-1], device=z.device)).to(z.dtype)


def cast_like(a: Array, like: Array) -> Array:
    return a.astype(like.dtype, copy=False) if is_numpy(like) else a.to(like.dtype)


def affine(a: Array, weight: Array, bias: Array | None) -> Array:
    """a @ weight.mT + bias, with torch's fused ``addmm`` for the plain 2-D case."""
    if bias is None:
        return a @ weight.mT
    if not is_numpy(a) and a.dim() == 2 and weight.dim() == 2:
        return torch.addmm(bias, a, weight.T)
    return a @ weight.mT + bias[..., None, :]


def sqrt(z: Array) -> Array:
    return np.sqrt(z) if is_numpy(z) else torch.sqrt(z)
