"""The few operations where torch and NumPy spell things differently.

The hand-derived formulas are written once against this interface, so the same code runs on torch
tensors (any device, the default) and on NumPy arrays (the CPU fast path for tiny networks, where
NumPy's per-call overhead is several times lower than torch's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class TorchOps:
    xp = torch

    @staticmethod
    def sigmoid(z: Any) -> Any:
        return torch.sigmoid(z)

    @staticmethod
    def relu(z: Any) -> Any:
        return torch.clamp_min(z, 0.0)

    @staticmethod
    def row_max(z: Any) -> Any:
        return z.max(dim=1, keepdim=True).values

    @staticmethod
    def row_sum(z: Any) -> Any:
        return z.sum(dim=1, keepdim=True)

    @staticmethod
    def arange_like(n: int, like: Any) -> Any:
        return torch.arange(n, device=like.device)

    @staticmethod
    def cast_like(a: Any, like: Any) -> Any:
        return a.to(like.dtype)

    @staticmethod
    def as_index(a: Any) -> Any:
        return a.long()


class NumpyOps:
    xp = np

    @staticmethod
    def sigmoid(z: Any) -> Any:
        return np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + exp(-z)) without overflow

    @staticmethod
    def relu(z: Any) -> Any:
        return np.maximum(z, 0.0)

    @staticmethod
    def row_max(z: Any) -> Any:
        return z.max(axis=1, keepdims=True)

    @staticmethod
    def row_sum(z: Any) -> Any:
        return z.sum(axis=1, keepdims=True)

    @staticmethod
    def arange_like(n: int, like: Any) -> Any:
        return np.arange(n)

    @staticmethod
    def cast_like(a: Any, like: Any) -> Any:
        return a.astype(like.dtype, copy=False)

    @staticmethod
    def as_index(a: Any) -> Any:
        return a.astype(np.int64, copy=False)


def ops_for(array: Any) -> type[TorchOps] | type[NumpyOps]:
    return NumpyOps if isinstance(array, np.ndarray) else TorchOps
