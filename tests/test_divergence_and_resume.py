"""A diverging run stops at once with one message naming where and what to change; a run with dropout
resumes exactly (its masks' generator travels in the checkpoint)."""

from __future__ import annotations

import math
import re
from functools import partial
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.optim.lr_scheduler import OneCycleLR

from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from models.schedules import ScheduleError
from tests.conftest import quiet_trainer
from tests.test_cli_errors import fails_with_one_message, flower_args


@pytest.mark.parametrize("module", ["models.ManualModule", "models.NativeModule"])
def test_divergence_stops_the_run_with_one_message(tmp_path, capsys, module: str) -> None:
    args = flower_args(
        tmp_path,
        f"--model={module}",
        "--model.init_args.net.activation=identity",  # nothing saturates: a huge lr overflows
        "--model.init_args.optimizer.init_args.lr=1e6",
        "--trainer.max_epochs=5",
        "--model.init_args.epochs_per_step=1",
        "--trainer.callbacks=[]",
    )
    message = fails_with_one_message(args, capsys)
    assert "diverged" in message and "non-finite" in message and "learning rate 1e+06" in message
    assert "epoch 1 " in message and "update " in message
    assert "Lower model.init_args.optimizer.init_args.lr" in message
    assert not (tmp_path / "runs" / "flower").exists()  # the failed run's directory held nothing worth keeping


def test_divergence_inside_an_epoch_block_names_the_epoch_not_the_block(tmp_path, capsys) -> None:
    args = flower_args(
        tmp_path,
        "--model.init_args.net.activation=identity",
        "--model.init_args.optimizer.init_args.lr=30",  # overflows after a few epochs
        "--trainer.max_epochs=10",
        "--model.init_args.epochs_per_step=5",
        "--trainer.callbacks=[]",
    )
    message = fails_with_one_message(args, capsys)
    update, epoch = (int(v) for v in re.search(r"at update (\d+), in epoch (\d+) ", message).groups())
    assert epoch > 1 and epoch == math.ceil(update / 70)  # 70 rows, one update each, per epoch


SPEC = dict(input_size=2, hidden_sizes=[6, 5], output_size=2, activation="tanh", dropout=0.3, init_std=0.5)


def fit(module, tmp_path, epochs: int, ckpt_path: str | None = None) -> ModelCheckpoint:
    """A resumed fit gets the callback its checkpoint was saved with, saving nothing more: Lightning restores its
    state and has neither a missing callback nor a changed checkpoint folder to warn about."""
    if ckpt_path is None:
        checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    else:
        checkpoints = ModelCheckpoint(dirpath=Path(ckpt_path).parent, save_top_k=0)
    trainer = quiet_trainer(
        tmp_path, max_epochs=epochs, enable_checkpointing=True, callbacks=[checkpoints], limit_val_batches=0
    )
    trainer.fit(module, datamodule=Week04DataModule(batch_size=40), ckpt_path=ckpt_path)
    return checkpoints


@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
def test_dropout_run_resumed_equals_the_straight_run(tmp_path, module_class) -> None:
    straight = module_class(MLPSpec(**SPEC), rows_per_update=8)
    fit(straight, tmp_path / "straight", epochs=6)
    first = module_class(MLPSpec(**SPEC), rows_per_update=8)
    checkpoints = fit(first, tmp_path / "first", epochs=3)
    resumed = module_class(MLPSpec(**SPEC), rows_per_update=8)
    fit(resumed, tmp_path / "resumed", epochs=6, ckpt_path=checkpoints.last_model_path)
    assert resumed.updates_done == straight.updates_done == 6 * 400 // 8
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_extending_a_resumed_one_cycle_run_is_refused_before_training(tmp_path) -> None:
    def module() -> ManualModule:
        return ManualModule(MLPSpec(**SPEC), rows_per_update=8, lr_scheduler=partial(OneCycleLR, max_lr=0.5))

    checkpoints = fit(module(), tmp_path / "first", epochs=2)
    longer = module()
    with pytest.raises(ScheduleError, match="spans 100 .* cannot be extended"):
        fit(longer, tmp_path / "longer", epochs=4, ckpt_path=checkpoints.last_model_path)
    assert longer.updates_done == 100  # refused at the start: not one update more
    same = module()
    fit(same, tmp_path / "same", epochs=2, ckpt_path=checkpoints.last_model_path)  # the planned length resumes
