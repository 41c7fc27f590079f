"""Parameters shared by both nets: the same layers, the same names, the same initial values."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.init import initial_parameters
from models.spec import MLPSpec

Weights = list[tuple[Any, Any]]  # per layer, conv layers first: weight and bias (or None)
NormState = tuple[Any, Any, Any, Any, Any]  # per batch norm: gamma, beta, running mean, running var, batches seen


def l2_penalty(l2: float, weight_matrices: list[Any]) -> Any:
    """l2/2 * sum of squared weights (biases excluded); torch tensors or NumPy arrays."""
    return 0.5 * l2 * sum((w * w).sum() for w in weight_matrices)


class MLPParameters(nn.Module):
    """``convs[k]`` is an ``nn.Conv2d`` (weight (out, in, k, k)); ``layers[k]`` is an ``nn.Linear``:
    weight (fan_out, fan_in), bias (fan_out,), Z = A @ W.T + b; with ``spec.batch_norm``, ``norms[k]`` is
    the ``nn.BatchNorm1d`` after hidden layer k: gamma (``weight``), beta (``bias``) and the running
    statistics as buffers.

    Subclasses differ only in how they compute gradients, so their state_dicts are interchangeable.
    ``parameters()`` lists the conv layers first, then the dense ones, each weight before its bias, then
    each batch norm's gamma and beta.
    """

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        self.spec = spec
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, spec.conv_kernel_size, padding=spec.conv_padding, bias=spec.bias)
            for i, o in spec.conv_channel_pairs
        )
        sizes = spec.layer_sizes
        self.layers = nn.ModuleList(nn.Linear(i, o, bias=spec.bias) for i, o in zip(sizes[:-1], sizes[1:]))
        norm_sizes = spec.hidden_sizes if spec.batch_norm else []
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(h, eps=spec.batch_norm_eps, momentum=spec.batch_norm_momentum) for h in norm_sizes
        )
        # Dropout masks come from the net's own generator, seeded like the weights: both nets draw the
        # same masks, and a checkpoint that stores its state resumes them exactly.
        self.dropout_generator = torch.Generator()
        self.reset_parameters()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the dropout generator as its state in a NumPy array: ``ddp_spawn`` moves tensors into shared
        memory, which fails for a Generator's state."""
        state = dict(super().__getstate__())
        state["dropout_generator"] = self.dropout_generator.get_state().numpy().copy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator_state = state["dropout_generator"]
        super().__setstate__({**state, "dropout_generator": torch.Generator()})
        self.dropout_generator.set_state(torch.from_numpy(generator_state))

    def all_layers(self) -> list[nn.Conv2d | nn.Linear]:
        return [*self.convs, *self.layers]

    def weights(self) -> Weights:
        """(weight, bias) per layer, conv layers first: the argument of the hand-derived functions."""
        return [(layer.weight, layer.bias) for layer in self.all_layers()]

    def norm_states(self) -> list[NormState]:
        """Per batch norm: gamma, beta, running mean, running variance and the count of batches it has seen."""
        return [(n.weight, n.bias, n.running_mean, n.running_var, n.num_batches_tracked) for n in self.norms]

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Copy in the spec's seeded initial weights (see :mod:`models.init`); reseed the dropout masks;
        batch norms start as torch's: gamma 1, beta 0, running mean 0 and variance 1."""
        self.dropout_generator.manual_seed(self.spec.init_seed)
        for layer, (weight, bias) in zip(self.all_layers(), initial_parameters(self.spec)):
            layer.weight.copy_(torch.from_numpy(weight))
            if bias is not None:
                layer.bias.copy_(torch.from_numpy(bias))
        for norm in self.norms:
            norm.reset_parameters()

    @torch.no_grad()
    def is_at_initial_values(self) -> bool:
        """True while every parameter still equals its seeded initial value (at the current dtype)."""
        for layer, (weight, bias) in zip(self.all_layers(), initial_parameters(self.spec)):
            if not torch.equal(layer.weight, torch.from_numpy(weight).to(layer.weight)):
                return False
            if bias is not None and not torch.equal(layer.bias, torch.from_numpy(bias).to(layer.bias)):
                return False
        for gamma, beta, mean, var, batches in self.norm_states():
            fresh = (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (var == 1).all()
            if not fresh or int(batches) != 0:
                return False
        return True
