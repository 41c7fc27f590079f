"""A diverging run stops at once with one message naming where and what to change; a run with dropout
resumes exactly (its masks' generator travels in the checkpoint)."""

from __future__ import annotations

import math
import re
from functools import partial
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.optim.lr_scheduler import OneCycleLR

from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from models.schedules import ScheduleError
from tests.conftest import ROOT, MessagesOf, quiet_trainer
from tests.test_cli_errors import fails_with_one_message, flower_args
from train import cli_main, make_cli


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


def week04_fit(tmp_path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(ROOT / "configs/week04.yaml"),
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
        "--weights_export.print_final=false",
        "--test_after_fit=false",
        *extra,
    ]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_a_finite_blow_up_stops_like_a_nan(tmp_path, capsys, activation: str) -> None:
    """lr 1e6 takes a saturating net's loss from 0.69 to millions without a NaN: the growth bound stops it (the
    weight bound, off here, would stop it too)."""
    args = week04_fit(
        tmp_path,
        f"--model.init_args.net.activation={activation}",
        "--model.init_args.optimizer.init_args.lr=1e6",
        "--model.init_args.divergence_max_weight=0",
    )
    message = fails_with_one_message(args, capsys)
    assert "diverged: its mean loss grew to" in message and "(model.init_args.divergence_loss_growth)" in message
    assert "Lower model.init_args.optimizer.init_args.lr" in message


def test_weights_past_the_bound_stop_the_run(tmp_path, capsys) -> None:
    args = week04_fit(tmp_path, "--model.init_args.net.activation=relu", "--model.init_args.optimizer.init_args.lr=1e6")
    message = fails_with_one_message(args, capsys)
    assert "a weight grew to" in message and "past 1e+06 (model.init_args.divergence_max_weight)" in message


def test_the_growth_bound_is_settable(tmp_path) -> None:
    """With both bounds off only non-finite values stop a run: the blow-up trains to its end."""
    cli = make_cli(
        week04_fit(
            tmp_path,
            "--model.init_args.net.activation=tanh",
            "--model.init_args.optimizer.init_args.lr=1e6",
            "--model.init_args.divergence_loss_growth=0",
            "--model.init_args.divergence_max_weight=0",
            "--trainer.max_epochs=2",
        )
    )
    assert cli.model.epochs_done == 2


def test_a_resumed_fit_continues_its_run_with_the_overrides_it_is_given(tmp_path) -> None:
    cli_main(week04_fit(tmp_path, "--trainer.max_epochs=2"))
    run = tmp_path / "runs" / "week04" / "version_0"
    (checkpoint,) = (run / "checkpoints").glob("*.ckpt")
    assert checkpoint.name == "epoch=2-step=800.ckpt"
    printed = MessagesOf("backprop")
    with printed:
        resumed = make_cli(
            week04_fit(
                tmp_path,
                "--trainer.max_epochs=3",
                "--model.init_args.optimizer.init_args.lr=0.5",
                f"--ckpt_path={checkpoint}",
            )
        )
    assert resumed.trainer.log_dir == str(run)  # the same run: no version_1
    assert not (tmp_path / "runs" / "week04" / "version_1").exists()
    assert resumed.model.optimizers().optimizer.param_groups[0]["lr"] == 0.5 and resumed.model.epochs_done == 3
    assert (run / "checkpoints" / "epoch=3-step=1200.ckpt").is_file()
    recorded = yaml.safe_load((run / "config_resumed.yaml").read_text())
    assert recorded["model"]["init_args"]["optimizer"]["init_args"]["lr"] == 0.5
    assert (
        yaml.safe_load((run / "config.yaml").read_text())["model"]["init_args"]["optimizer"]["init_args"]["lr"] == 0.1
    )
    assert "Resuming with model.init_args.optimizer.init_args.lr=0.5 (the checkpoint's run had 0.1)" in printed.text


def test_a_resume_that_would_change_the_net_is_refused_by_key(tmp_path, capsys) -> None:
    cli_main(week04_fit(tmp_path, "--trainer.max_epochs=1"))
    (checkpoint,) = (tmp_path / "runs" / "week04" / "version_0" / "checkpoints").glob("*.ckpt")
    message = fails_with_one_message(
        week04_fit(tmp_path, "--model.init_args.net.activation=tanh", f"--ckpt_path={checkpoint}"), capsys
    )
    assert message.startswith("error: model.init_args.net.activation is 'tanh' but --ckpt_path")
    assert "the net cannot change when a run resumes" in message


def test_a_scheduled_learning_rate_cannot_change_on_resume(tmp_path) -> None:
    def module(lr: float) -> ManualModule:
        optimizer = partial(torch.optim.SGD, lr=lr)
        return ManualModule(
            MLPSpec(**SPEC),
            optimizer=optimizer,
            rows_per_update=8,
            lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=5),
        )

    checkpoints = fit(module(0.1), tmp_path / "first", epochs=1)
    with pytest.raises(ScheduleError, match="lr is 0.3 but the resumed run was configured with 0.1 .* cannot change"):
        fit(module(0.3), tmp_path / "changed", epochs=2, ckpt_path=checkpoints.last_model_path)


@pytest.mark.slow
def test_a_run_in_epoch_blocks_resumes_to_more_epochs_from_the_command_line(tmp_path) -> None:
    """configs/lab04.yaml as shipped makes blocks of ceil(max_epochs / 50) epochs: 2 for 100, 4 for 200."""
    lab04 = [
        "--config",
        str(ROOT / "configs/lab04.yaml"),
        "--trainer.enable_progress_bar=false",
        "--test_after_fit=false",
    ]
    whole = make_cli(
        ["fit", *lab04, "--trainer.max_epochs=200", f"--trainer.logger.init_args.save_dir={tmp_path / 'whole'}"]
    )
    half = make_cli(
        ["fit", *lab04, "--trainer.max_epochs=100", f"--trainer.logger.init_args.save_dir={tmp_path / 'cut'}"]
    )
    (checkpoint,) = Path(half.trainer.log_dir, "checkpoints").glob("*.ckpt")
    assert checkpoint.name == "epoch=100-step=100.ckpt" and half.model.blocks.size == 2
    more = make_cli(
        [
            "fit",
            *lab04,
            "--trainer.max_epochs=200",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'cut'}",
            f"--ckpt_path={checkpoint}",
        ]
    )
    assert more.model.blocks.size == 4 and more.model.epochs_done == 200
    for a, b in zip(whole.model.parameters(), more.model.parameters()):
        # other block sizes give other updates a block's NumPy path makes; those round like torch's to 1e-16
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)


def test_a_run_that_diverges_after_checkpoints_names_the_folder_it_keeps(tmp_path, capsys) -> None:
    """Blocks of 5 epochs, each checkpointed; the loss overflows some epochs in: the message says where the run's
    earlier checkpoints are, which are whole and finite."""
    args = flower_args(
        tmp_path,
        "--model.init_args.net.activation=identity",
        "--model.init_args.optimizer.init_args.lr=30",
        "--model.init_args.divergence_max_weight=0",
        "--model.init_args.divergence_loss_growth=0",
        "--trainer.max_epochs=40",
        "--model.init_args.epochs_per_step=1",
        "--trainer.callbacks=[]",
    )
    with pytest.raises(SystemExit):
        cli_main(args)
    err = capsys.readouterr().err
    run = tmp_path / "runs" / "flower" / "version_0"
    assert f"(what the run wrote before this is kept in {run.parent})" in err  # the folder this command made
    checkpoints = list((run / "checkpoints").glob("*.ckpt"))
    assert checkpoints and all(
        torch.isfinite(v).all() for v in torch.load(checkpoints[0], weights_only=True)["state_dict"].values()
    )
