"""The layers' optional leading member dimension: M nets stacked as weights (M, out, in) and inputs
(M, N, in) give, member by member, the loss and gradients of each net run alone, on torch and NumPy,
for every activation x bias x head x depth (M = 1 and M = 3)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.manual_net import LayerChain, ManualMLP
from models.spec import MLPSpec
from tests.test_gradients import ACTIVATIONS, DEPTHS, HEADS, make_problem, relative_error, targets

COMBINATIONS = list(itertools.product(ACTIVATIONS, [False, True], HEADS, DEPTHS))


def member_problems(activation: str, bias: bool, head: str, depth: int, members: int):
    """``members`` nets of one shape with their own initial weights, inputs and targets."""
    base, _, _ = make_problem(activation, bias, head, depth, l2=0.01)
    problems = []
    for m in range(members):
        spec = MLPSpec(**{**base.__dict__, "init_seed": base.init_seed + 100 * m})
        gen = torch.Generator().manual_seed(50 + m)
        x = torch.randn(6, spec.input_size, generator=gen, dtype=torch.float64)
        problems.append((ManualMLP(spec).double(), x, targets(head, spec.output_size, 6, gen)))
    return base, problems


def stacked_weights(nets: list[ManualMLP], to_numpy: bool) -> list[tuple[object, object]]:
    """Each layer's weights (M, out, in) and biases (M, out), stacked over the nets."""
    stacked = []
    for layer_params in zip(*(net.weights() for net in nets)):
        w = torch.stack([w for w, _ in layer_params])
        b = None if layer_params[0][1] is None else torch.stack([b for _, b in layer_params])
        if to_numpy:
            w, b = w.detach().numpy(), None if b is None else b.detach().numpy()
        stacked.append((w, b))
    return stacked


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("activation,bias,head,depth", COMBINATIONS)
def test_each_member_equals_its_own_single_net(activation, bias, head, depth, backend, members) -> None:
    spec, problems = member_problems(activation, bias, head, depth, members)
    nets = [net for net, _, _ in problems]
    x = torch.stack([x for _, x, _ in problems])  # (M, N, in)
    y = torch.stack([y for _, _, y in problems])  # (M, N) or (M, N, K)
    to_numpy = backend == "numpy"
    chain = LayerChain(spec, stacked_weights(nets, to_numpy))
    with torch.no_grad():
        loss = chain.loss(x.numpy() if to_numpy else x, y.numpy() if to_numpy else y)
        grads = chain.backward()
    assert tuple(loss.shape) == (members,)  # one loss per member
    for m, (net, x_m, y_m) in enumerate(problems):
        single_loss, single_grads = net.loss_and_gradients(x_m, y_m)
        assert abs(float(loss[m]) - single_loss.item()) <= 1e-12 * max(1.0, abs(single_loss.item()))
        assert len(grads) == len(single_grads)
        for g, single in zip(grads, single_grads):
            g_m = torch.from_numpy(np.asarray(g[m])) if to_numpy else g[m]
            assert g_m.shape == single.shape
            assert relative_error(g_m, single) <= 1e-12
