"""MNIST week (notebook 002): the Day-29 sanity run against the notebook's own loop, and the next-idea configs
layered on their base configs."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.mnist_week import UpdateLosses
from experiments.runner import CONFIGS, QUIET, run
from tests.notebook_reference import mnist_day29_training, mnist_week_toy_data
from train import make_cli


@pytest.mark.slow
def test_day29_run_ends_where_the_notebooks_loop_ends() -> None:
    """2-8-2 ReLU, lr 0.5, 200 full-batch epochs on all 160 rows: every epoch's loss and the final weights."""
    losses = UpdateLosses()
    result = run("mnist_day29", callbacks=[losses])
    weights, notebook_losses = mnist_day29_training(*mnist_week_toy_data())
    net = result.module.net
    assert result.module.updates_done == 200 and len(losses.values) == 200
    for k, layer in enumerate(net.layers, start=1):
        np.testing.assert_allclose(layer.weight.detach().numpy().T, weights[f"W{k}"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(layer.bias.detach().numpy(), weights[f"b{k}"][0], rtol=0, atol=1e-12)
    # the notebook adds 1e-12 inside its log: the losses agree to that
    np.testing.assert_allclose(losses.values, notebook_losses, rtol=0, atol=1e-10)
    assert result.datamodule.tensors("val") is None  # no split: the test runs on the 160 training rows
    assert len(result.datamodule.tensors("test")[0]) == 160 and result.last["test/accuracy"] > 0.95


@pytest.mark.parametrize(
    "base, layer, check",
    [
        ("fashion_mnist_mlp", "batch_norm", lambda cli: cli.model.spec.batch_norm),
        ("fashion_mnist_mlp", "augment", lambda cli: cli.datamodule.hparams.augment),
        ("mnist_toy", "batch_norm", lambda cli: cli.model.spec.batch_norm),
    ],
)
def test_next_idea_layers_build_on_their_base_config(base: str, layer: str, check) -> None:
    args = ["--config", str(CONFIGS / f"{base}.yaml"), "--config", str(CONFIGS / "next_ideas" / f"{layer}.yaml")]
    assert check(make_cli([*args, *QUIET], run=False))
