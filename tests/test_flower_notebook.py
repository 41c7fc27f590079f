"""The flower notebook's run (configs/experiments/flower_manual.yaml) starts from the notebook's seeded
weights and makes its per-flower updates in file order, checked against an independent scalar replay."""

from __future__ import annotations

import numpy as np
import pytest

from callbacks.weights_export import notebook_weights
from experiments.runner import CONFIGS, QUIET, run
from tests.conftest import ROOT
from tests.notebook_reference import flower_initial, flower_rows, flower_scalar_sgd
from train import make_cli

FLOWER_CSV = ROOT / "data/flower/flower_data_train.csv"


def as_notebook_scalars(module) -> dict[str, float]:
    """The net's parameters under the notebook's names: h1 = sigmoid(w1 sun + w2 water + b1), ..."""
    w = notebook_weights(module)
    (w1, w3), (w2, w4) = w["W1"]
    (w5,), (w6,) = w["W2"]
    (b1, b2), (b3,) = w["b1"], w["b2"]
    values = dict(w1=w1, w2=w2, w3=w3, w4=w4, w5=w5, w6=w6, b1=b1, b2=b2, b3=b3)
    return {name: float(v) for name, v in values.items()}


def largest_difference(a: dict[str, float], b: dict[str, float]) -> float:
    assert a.keys() == b.keys()
    return max(abs(a[k] - b[k]) for k in a)


@pytest.mark.parametrize("config", [CONFIGS / "flower_manual.yaml", ROOT / "configs/flower.yaml"])
def test_flower_configs_start_from_the_notebooks_seeded_draw(config) -> None:
    cli = make_cli(["--config", str(config), *QUIET], run=False)
    cli.model.net.double().reset_parameters()  # float64, as the 64-true trainer casts the net at fit start
    assert as_notebook_scalars(cli.model) == flower_initial(42)  # exactly: same generator, same calls


@pytest.mark.parametrize("module", ["models.ManualModule", "models.NativeModule"])
def test_first_epoch_weights_equal_the_notebook_loop(module: str) -> None:
    points, outcomes = flower_rows(FLOWER_CSV)
    assert len(points) == 100
    expected = flower_scalar_sgd(points, outcomes, epochs=1)
    result = run("flower_manual", ["--trainer.max_epochs=1", f"--model={module}"])
    assert result.module.updates_done == 100  # one update per flower
    assert largest_difference(as_notebook_scalars(result.module), expected) <= 1e-12
    untrained = flower_scalar_sgd(points, outcomes, epochs=0)
    assert largest_difference(untrained, expected) > 1e-3  # the epoch moved the weights, so the check has teeth


def test_a_shuffled_epoch_would_not_match() -> None:
    """The exactness above depends on file order: the shuffled order of configs/flower.yaml differs."""
    points, outcomes = flower_rows(FLOWER_CSV)
    expected = flower_scalar_sgd(points, outcomes, epochs=1)
    shuffled = run("flower_manual", ["--trainer.max_epochs=1", "--data.shuffle=true"])
    assert largest_difference(as_notebook_scalars(shuffled.module), expected) > 1e-6
    assert np.isfinite(list(as_notebook_scalars(shuffled.module).values())).all()
