"""Optimiser and schedule values the math refuses are refused by key before anything trains, in fit, compare and
sweep grids alike; torch's own constructors decide what is refused."""

from __future__ import annotations

import pytest
from jsonargparse import Namespace

from commands.errors import ConfigError
from commands.optimizer_values import check_optimization
from commands.sweep import run_sweep
from commands.sweep_grid import SweepError
from tests.conftest import ROOT
from tests.test_cli_errors import fails_with_one_message, flower_args
from train import make_cli

OPTIMIZER = "model.init_args.optimizer.init_args"
SCHEDULER = "model.init_args.lr_scheduler.init_args"


def model(optimizer: tuple[str, dict] | None = None, scheduler: tuple[str, dict] | None = None) -> Namespace:
    """The ``model`` entry of a parsed config, as jsonargparse gives it."""

    def entry(settings: tuple[str, dict] | None) -> Namespace | None:
        return None if settings is None else Namespace(class_path=settings[0], init_args=Namespace(**settings[1]))

    return Namespace(
        class_path="models.ManualModule", init_args=Namespace(optimizer=entry(optimizer), lr_scheduler=entry(scheduler))
    )


SGD, ADAM = "torch.optim.SGD", "torch.optim.Adam"
STEP, ONE_CYCLE, PLATEAU = (
    f"torch.optim.lr_scheduler.{name}" for name in ("StepLR", "OneCycleLR", "ReduceLROnPlateau")
)
REFUSED = [
    ((SGD, {"lr": -0.1}), None, f"{OPTIMIZER}.lr is -0.1, which {SGD} refuses: Invalid learning rate: -0.1"),
    ((SGD, {"lr": 0.1, "momentum": -0.5}), None, f"{OPTIMIZER}.momentum is -0.5, which {SGD} refuses"),
    # torch stops at the first value it refuses; so does the message
    ((SGD, {"lr": -1, "momentum": -1}), None, f"{OPTIMIZER}.lr is -1, which .*Invalid learning rate"),
    ((ADAM, {"lr": 0.1, "eps": -1e-8}), None, f"{OPTIMIZER}.eps is -1e-08, which {ADAM} refuses: Invalid epsilon"),
    ((ADAM, {"betas": (1.5, 0.9)}), None, rf"{OPTIMIZER}.betas is \(1.5, 0.9\), which .*beta parameter at index 0"),
    (
        None,
        (STEP, {"step_size": 0}),
        rf"{SCHEDULER}.step_size is 0, which {STEP} divides by \(integer modulo by zero\)",
    ),
    (None, (ONE_CYCLE, {"max_lr": 0.5, "pct_start": 1.5}), f"{SCHEDULER}.pct_start is 1.5, which {ONE_CYCLE} refuses"),
    (None, (ONE_CYCLE, {"max_lr": 0.5, "total_steps": 0}), f"{SCHEDULER}.total_steps is 0, which {ONE_CYCLE}"),
    (None, (PLATEAU, {"factor": 2.0}), f"{SCHEDULER}.factor is 2.0, which .* refuses: Factor should be < 1.0"),
]


@pytest.mark.parametrize(("optimizer", "scheduler", "message"), REFUSED)
def test_values_torch_refuses_are_named_by_key(optimizer, scheduler, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_optimization(model(optimizer, scheduler))


@pytest.mark.parametrize(
    ("optimizer", "scheduler"),
    [
        (None, None),  # the module's default, SGD with lr 0.1
        ((SGD, {"lr": 0.0, "momentum": 0.9, "nesterov": True}), None),
        ((ADAM, {"lr": 1e-3}), (ONE_CYCLE, {"max_lr": 0.5})),  # the run's length is filled in
        ((SGD, {"lr": 0.1}), (STEP, {"step_size": 1, "gamma": 0.5})),
        ((SGD, {"lr": 0.1}), (PLATEAU, {"factor": 0.5})),
    ],
)
def test_values_torch_takes_pass(optimizer, scheduler) -> None:
    check_optimization(model(optimizer, scheduler))
    check_optimization(None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--model.init_args.optimizer.init_args.lr=-0.1"], f"error: {OPTIMIZER}.lr is -0.1, which {SGD}"),
        (["--model.init_args.optimizer.init_args.momentum=-0.5"], f"error: {OPTIMIZER}.momentum is -0.5"),
        ([f"--model.init_args.optimizer={ADAM}", f"--{OPTIMIZER}.eps=-1"], f"error: {OPTIMIZER}.eps is -1.0"),
        (
            [f"--model.init_args.lr_scheduler={STEP}", f"--{SCHEDULER}.step_size=0"],
            f"error: {SCHEDULER}.step_size is 0",
        ),
    ],
)
@pytest.mark.parametrize("command", ["fit", "compare"])
def test_fit_and_compare_refuse_before_anything_is_written(tmp_path, capsys, command: str, overrides, message) -> None:
    line = fails_with_one_message(flower_args(tmp_path, *overrides, command=command), capsys)
    assert line.startswith(message), line
    assert not (tmp_path / "runs").exists()


def test_a_sweep_grid_refuses_a_negative_learning_rate_before_training(tmp_path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  model.init_args.optimizer.init_args.lr: [0.1, -0.1]\n")
    args = ["--config", str(ROOT / "configs/week04.yaml"), "--trainer.max_epochs=1"]
    with pytest.raises(SweepError, match=rf"the member with {OPTIMIZER}.lr=-0.1: {OPTIMIZER}.lr is -0.1, which"):
        run_sweep(make_cli, args, str(grid), save_dir=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()
