"""SGD (with momentum, dampening, Nesterov, weight decay) and Adam over stacked members: each member
has its own learning rate and its own optimiser state, and the formulas are ``torch.optim``'s, step
for step, so a member ends where the single run of its config ends.

Parameters and gradients are arrays with a leading member dimension, torch tensors or NumPy arrays
alike (in-place arithmetic reads the same in both); ``lr`` is one value per member, (M,).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from models.layers import xp
from models.layers.xp import Array


def as_tensor(a: Array | None) -> Tensor | None:
    return None if a is None else torch.as_tensor(a).detach().clone()


def like(saved: Tensor | None, params: Array) -> Array | None:
    """A saved state tensor as the parameters' kind: a NumPy array on the CPU path, else a tensor."""
    if saved is None:
        return None
    return saved.numpy().copy() if xp.is_numpy(params) else saved.to(params.device)


def per_member(values: Array, like: Array) -> Array:
    """(M,) -> (M, 1, ...), broadcasting against a parameter of ``like``'s rank."""
    return values.reshape(values.shape[0], *([1] * (like.ndim - 1)))


@dataclass
class StackedSGD:
    """torch.optim.SGD: d = g + wd p; buf = momentum buf + (1 - dampening) d (buf = d at the first
    step); d = d + momentum buf (Nesterov) or buf; p -= lr d."""

    lr: Array  # (M,)
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    buffers: list[Array | None] = field(default_factory=list)
    lr_views: list[Array] = field(default_factory=list, repr=False)  # lr shaped per parameter, made once

    def step(self, params: list[Array], grads: list[Array]) -> None:
        if not self.buffers:
            self.buffers = [None] * len(params)
        if len(self.lr_views) != len(params):  # views of lr: a frozen member's lr of 0 shows through
            self.lr_views = [per_member(self.lr, p) for p in params]
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                if self.buffers[i] is None:
                    self.buffers[i] = g.copy() if xp.is_numpy(g) else g.clone()
                else:
                    buf = self.buffers[i]
                    buf *= self.momentum
                    buf += (1 - self.dampening) * g
                g = g + self.momentum * self.buffers[i] if self.nesterov else self.buffers[i]
            p -= self.lr_views[i] * g

    def state_dict(self) -> dict[str, object]:
        return {"lr": as_tensor(self.lr), "buffers": [as_tensor(b) for b in self.buffers]}

    def load_state_dict(self, state: dict[str, object], like_params: list[Array]) -> None:
        self.lr, self.lr_views = like(state["lr"], like_params[0]), []
        self.buffers = [like(b, p) for b, p in zip(state["buffers"], like_params)]


@dataclass
class StackedAdam:
    """torch.optim.Adam (no amsgrad): m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    lr: Array  # (M,)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    steps: int = 0
    exp_avg: list[Array] = field(default_factory=list)
    exp_avg_sq: list[Array] = field(default_factory=list)

    def step(self, params: list[Array], grads: list[Array]) -> None:
        beta1, beta2 = self.betas
        if not self.exp_avg:
            zeros = [np.zeros_like(p) if xp.is_numpy(p) else p.new_zeros(p.shape) for p in params]
            self.exp_avg = zeros
            self.exp_avg_sq = [z.copy() if xp.is_numpy(z) else z.clone() for z in zeros]
        self.steps += 1
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        for p, g, m, v in zip(params, grads, self.exp_avg, self.exp_avg_sq):
            if self.weight_decay:
                g = g + self.weight_decay * p
            m += (1 - beta1) * (g - m)  # torch's lerp for a weight below 0.5
            v *= beta2
            v += (1 - beta2) * (g * g)
            denom = xp.sqrt(v) / bias_correction2_sqrt + self.eps
            p -= (per_member(self.lr, p) / bias_correction1) * (m / denom)

    def state_dict(self) -> dict[str, object]:
        return {
            "lr": as_tensor(self.lr),
            "steps": self.steps,
            "exp_avg": [as_tensor(a) for a in self.exp_avg],
            "exp_avg_sq": [as_tensor(a) for a in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict[str, object], like_params: list[Array]) -> None:
        self.lr, self.steps = like(state["lr"], like_params[0]), int(state["steps"])
        self.exp_avg = [like(a, p) for a, p in zip(state["exp_avg"], like_params)]
        self.exp_avg_sq = [like(a, p) for a, p in zip(state["exp_avg_sq"], like_params)]
