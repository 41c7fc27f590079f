"""The week-7 config (configs/experiments/week07_moons.yaml) is the notebook's run: its moons split, its
seed-42 legacy draw, and its 1,000 full-batch epochs, checked against an independent replay of its loop."""

from __future__ import annotations

import numpy as np
import pytest

from callbacks.tensorboard_hparams import run_hparams
from callbacks.weights_export import notebook_weights
from experiments.runner import CONFIGS, QUIET, run
from tests.notebook_reference import moons_full_batch, moons_split, moons_start
from train import make_cli

CONFIG = CONFIGS / "week07_moons.yaml"
NO_CALLBACKS = ["--trainer.callbacks=[]"]  # the gradient check and dashboard change nothing here


def largest_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_data_is_the_notebooks_moons_split() -> None:
    cli = make_cli(["--config", str(CONFIG), *QUIET], run=False)
    cli.datamodule.setup("fit")
    x_train, y_train, x_test, y_test = moons_split(42)
    for split, (x, y) in {"train": (x_train, y_train), "test": (x_test, y_test)}.items():
        features, labels = cli.datamodule.tensors(split)
        np.testing.assert_array_equal(features.numpy(), x)  # no scaling: the notebook uses the raw moons
        np.testing.assert_array_equal(labels.numpy(), y)
    assert len(x_train) == 210 == cli.datamodule.hparams.batch_size  # full batch: one update per epoch


def test_config_starts_from_the_notebooks_seed_42_draw() -> None:
    cli = make_cli(["--config", str(CONFIG), *QUIET], run=False)
    cli.model.net.double().reset_parameters()  # float64, as the 64-true trainer re-draws at fit start
    start = notebook_weights(cli.model)
    assert largest_difference(start, moons_start(42)) <= 1e-12
    # the check has teeth: the project's default_rng draw of the same std lies far from the notebook's
    other = make_cli(["--config", str(CONFIG), *QUIET, "--model.init_args.net.init=normal"], run=False)
    other.model.net.double().reset_parameters()
    assert largest_difference(notebook_weights(other.model), moons_start(42)) > 0.1
    hparams = run_hparams(cli.trainer, cli.model)  # TensorBoard's HParams name the scale, not the unused init_std
    assert (hparams["init"], hparams["init scale"], hparams["init seed"]) == ("legacy_numpy", 0.1, 42)
    assert "init std" not in hparams


def test_first_epochs_follow_the_notebook_loop() -> None:
    x, y, _, _ = moons_split(42)
    result = run("week07_moons", [*NO_CALLBACKS, "--trainer.max_epochs=3"])
    expected = moons_full_batch(x, y, moons_start(42), epochs=3)
    assert largest_difference(notebook_weights(result.module), expected) <= 1e-12
    assert largest_difference(moons_start(42), expected) > 1e-3  # three steps moved the weights


@pytest.mark.slow
@pytest.mark.parametrize("module", ["models.ManualModule", "models.NativeModule"])
def test_1000_epochs_end_where_the_notebook_loop_ends(module: str) -> None:
    x, y, _, _ = moons_split(42)
    expected = moons_full_batch(x, y, moons_start(42), epochs=1000)
    # epoch blocks: 20 epochs per Lightning step, the same updates (tests/test_epoch_blocks.py)
    result = run("week07_moons", [*NO_CALLBACKS, f"--model={module}", "--model.init_args.epochs_per_step=auto"])
    assert result.module.updates_done == 1000
    difference = largest_difference(notebook_weights(result.module), expected)
    print(f"{module}: largest |w - w_notebook| after 1000 epochs = {difference:.3e}")
    assert difference <= 1e-9
