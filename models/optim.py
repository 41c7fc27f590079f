"""SGD and Adam, ``torch.optim``'s formulas step for step, on NumPy arrays or torch tensors, for one net or a stack.

Two users share them:
- a single run's NumPy path (:mod:`models.engine`), which updates NumPy views of the parameters and keeps the
  state in the torch optimizer's own ``state[param]`` dicts, under torch's names, so the NumPy updates and
  ``optimizer.step()`` continue each other within one block;
- a sweep's stack (:mod:`models.sweep_module`), whose parameters carry a leading member dimension and whose
  ``lr`` holds one rate per member, (M,).

``hyper`` is a torch param group (read at every step, so a schedule's new lr is seen) or a plain dict with the
same keys. Parameters and gradients may be NumPy arrays or tensors: in-place arithmetic reads the same in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.console import say
from models.layers import xp
from models.layers.xp import Array
from models.schedules import ScheduleError

State = dict[str, Any]  # one parameter's optimiser state, under torch.optim's names


def copy_array(a: Array) -> Array:
    """A copy in ``a``'s own memory layout (a stack laid out member-last stays so)."""
    return a.copy(order="K") if xp.is_numpy(a) else a.clone()


def per_member_rates(lr: Array | float, params: list[Array]) -> list[Array | float]:
    """The learning rate for each parameter: a number stays a number; one rate per member (M,) becomes
    (M, 1, ...) to broadcast against that stacked parameter (one reshape per number of dimensions)."""
    if isinstance(lr, (int, float)):
        return [lr] * len(params)
    shaped = {ndim: lr.reshape(lr.shape[0], *([1] * (ndim - 1))) for ndim in {p.ndim for p in params}}
    return [shaped[p.ndim] for p in params]


class StateArrays:
    """Reads and creates state entries as arrays of the parameters' kind.

    With ``torch_state`` the entries stay torch tensors (the optimizer's own ``state`` dicts) and NumPy
    parameters work on views of them; otherwise entries are stored as the arrays themselves.
    """

    def __init__(self, torch_state: bool) -> None:
        self.torch_state = torch_state

    def get(self, state: State, key: str, like: Array) -> Array | None:
        value = state.get(key)
        if value is not None and xp.is_numpy(like) and isinstance(value, Tensor):
            return value.numpy()
        return value

    def put(self, state: State, key: str, value: Array) -> Array:
        """Store ``value`` (owned by the state from now on) and return the array to update in place."""
        if self.torch_state and xp.is_numpy(value):
            state[key] = torch.from_numpy(value)
        else:
            state[key] = value
        return value


class SGD:
    """torch.optim.SGD: d = g + wd p; buf = momentum buf + (1 - dampening) d (buf = d at the first step);
    d = d + momentum buf (Nesterov) or buf; p -= lr d."""

    def __init__(self, hyper: dict[str, Any], states: list[State], torch_state: bool = False) -> None:
        self.hyper, self.states, self.arrays = hyper, states, StateArrays(torch_state)

    def step(self, params: list[Array], grads: list[Array]) -> None:
        h = self.hyper
        momentum, dampening, weight_decay = h.get("momentum", 0.0), h.get("dampening", 0.0), h.get("weight_decay", 0.0)
        lr = per_member_rates(h["lr"], params)
        for p, g, state, rate in zip(params, grads, self.states, lr):
            if weight_decay:
                g = g + weight_decay * p
            if momentum:
                buf = self.arrays.get(state, "momentum_buffer", p)
                if buf is None:
                    buf = self.arrays.put(state, "momentum_buffer", copy_array(g))
                else:
                    buf *= momentum
                    buf += (1 - dampening) * g
                g = g + momentum * buf if h.get("nesterov", False) else buf
            p -= rate * g


class Adam:
    """torch.optim.Adam (no amsgrad): m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    def __init__(self, hyper: dict[str, Any], states: list[State], torch_state: bool = False) -> None:
        self.hyper, self.states, self.arrays = hyper, states, StateArrays(torch_state)

    def step(self, params: list[Array], grads: list[Array]) -> None:
        h = self.hyper
        beta1, beta2 = h.get("betas", (0.9, 0.999))
        eps, weight_decay = h.get("eps", 1e-8), h.get("weight_decay", 0.0)
        lr = per_member_rates(h["lr"], params)
        for p, g, state, rate in zip(params, grads, self.states, lr):
            if weight_decay:
                g = g + weight_decay * p
            m = self.arrays.get(state, "exp_avg", p)
            if m is None:
                zeros = np.zeros_like(p) if xp.is_numpy(p) else torch.zeros_like(p)
                m = self.arrays.put(state, "exp_avg", zeros)
                self.arrays.put(state, "exp_avg_sq", copy_array(zeros))
                state["step"] = torch.tensor(0.0, dtype=torch.float64) if self.arrays.torch_state else 0
            v = self.arrays.get(state, "exp_avg_sq", p)
            state["step"] += 1
            steps = float(state["step"])
            m += (1 - beta1) * (g - m)  # torch's lerp for a weight below 0.5
            v *= beta2
            v += (1 - beta2) * (g * g)
            denom = xp.sqrt(v) / (1 - beta2**steps) ** 0.5 + eps
            p -= (rate / (1 - beta1**steps)) * (m / denom)


RULES = {torch.optim.SGD: SGD, torch.optim.Adam: Adam}


def has_array_rule(optimizer: torch.optim.Optimizer) -> bool:
    """Whether :func:`array_rules` reproduces this optimizer: plain SGD or Adam, without the options they lack."""
    if type(optimizer) not in RULES:
        return False
    unsupported = ("maximize", "differentiable", "amsgrad", "capturable", "fused", "decoupled_weight_decay")
    return not any(group.get(option) for group in optimizer.param_groups for option in unsupported)


def array_rules(optimizer: torch.optim.Optimizer) -> list[tuple[SGD | Adam, list[Tensor]]]:
    """For each param group: the array rule over the optimizer's own hyper-parameters and state, and its params."""
    rule = RULES[type(optimizer)]
    return [
        (rule(group, [optimizer.state[p] for p in group["params"]], torch_state=True), list(group["params"]))
        for group in optimizer.param_groups
    ]


def group_settings(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Each param group's settings (learning rate, momentum, ...) as configured, without its parameters."""
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def keep_configured_settings(
    configured: torch.optim.Optimizer, saved_state: dict[str, Any], saved_configured: list[dict[str, Any]] | None
) -> None:
    """Make a checkpoint's optimiser state carry the settings now configured (learning rate, momentum, ...) where
    they differ from the ones its run was configured with, so that restoring it keeps them, and say which changed.

    ``saved_configured`` is that run's configured settings; a learning-rate schedule moves the state's rates, so only
    a change of configuration counts. With a schedule, a changed rate is refused: the schedule drives the rates.
    """
    scheduled = any("initial_lr" in group for group in saved_state.get("param_groups", []))
    before = saved_configured or [
        {k: v for k, v in g.items() if k != "params"} for g in saved_state.get("param_groups", [])
    ]
    for now, was, saved in zip(group_settings(configured), before, saved_state.get("param_groups", [])):
        for key, value in now.items():
            if key not in was or was[key] == value or key not in saved:
                continue
            if scheduled and key == "lr":
                raise ScheduleError(
                    f"model.init_args.optimizer.init_args.lr is {value!r} but the resumed run was configured with "
                    f"{was[key]!r} and its learning-rate schedule drives the rate: it cannot change on resume. Resume "
                    "with the run's settings, or start a new run"
                )
            say(
                f"Resuming with model.init_args.optimizer.init_args.{key}={value!r} (the checkpoint's run had "
                f"{was[key]!r})."
            )
            saved[key] = value
