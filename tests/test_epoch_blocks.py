"""Epoch blocks: K epochs in one training step give exactly the weights and logs of one epoch per step."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import Logger

from datamodules.base import TensorDataModule
from datamodules.tensor_loader import TensorBatchLoader
from models import ManualModule, MLPSpec, NativeModule
from models.engine import epoch_chunks
from models.epoch_blocks import plan_blocks
from tests.conftest import ROOT, quiet_trainer

SPEC = dict(input_size=2, hidden_sizes=[4], output_size=3, activation="tanh", bias=True, init_std=0.5)
EPOCHS = 7  # with 3 epochs per step: blocks of 3, 3 and 1


class Shuffled(TensorDataModule):
    """13 training rows served whole and reshuffled every epoch, so each epoch's order matters."""

    def __init__(self) -> None:
        super().__init__(batch_size=13, eval_batch_size=None, shuffle=True, seed=5, on_device=False)
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(19, 2, generator=generator, dtype=torch.float64)
        self.y = torch.randint(0, 3, (19,), generator=generator)

    def build_tensors(self, split: str) -> tuple[torch.Tensor, ...] | None:
        if split == "train":
            return self.x[:13], self.y[:13]
        return (self.x[13:], self.y[13:]) if split == "val" else None

    @property
    def num_classes(self) -> int:
        return 3


class Recorder(Logger):
    """Keeps every ``log_metrics`` call in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: object, *args: object, **kwargs: object) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.records.append((step, {k: float(v) for k, v in metrics.items()}))

    def series(self, tag: str) -> list[float]:
        return [metrics[tag] for _, metrics in self.records if tag in metrics]

    def epochs(self, tag: str) -> list[int]:
        """The notebook epoch each value of ``tag`` was logged at (every epoch bundle carries it)."""
        return [int(metrics["epoch"]) for _, metrics in self.records if tag in metrics]

    def steps(self, tag: str) -> list[int | None]:
        return [step for step, metrics in self.records if tag in metrics]


def step_lr(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.3),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=0.05),
    "sgd_step_lr_per_epoch": lambda p: torch.optim.SGD(p, lr=0.3),
}


def make_module(module_class: type, optimizer: str, epochs_per_step: int | str, rows_per_update: int | None):
    schedule = dict(lr_scheduler=step_lr, lr_scheduler_interval="epoch") if optimizer.endswith("per_epoch") else {}
    return module_class(
        MLPSpec(**SPEC),
        optimizer=OPTIMIZERS[optimizer],
        rows_per_update=rows_per_update,
        epochs_per_step=epochs_per_step,
        **schedule,
    )


class StepLosses(Callback):
    """Each step's mean update loss in float64: the module's loss metric keeps float32 state, so a
    one-epoch run logs its epoch loss rounded to float32."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(pl_module.update_losses.mean()))


def fit(
    module, tmp_path: Path, epochs: int = EPOCHS, ckpt_path: str | None = None, **trainer_args: object
) -> tuple[Recorder, list[float]]:
    """The logger's records and each step's mean update loss in float64."""
    recorder, losses = Recorder(), StepLosses()
    trainer_args["callbacks"] = [*trainer_args.get("callbacks", []), losses]
    trainer = quiet_trainer(tmp_path, max_epochs=epochs, logger=recorder, log_every_n_steps=1, **trainer_args)
    trainer.fit(module, datamodule=Shuffled(), ckpt_path=ckpt_path)
    return recorder, losses.losses


def assert_same_weights(a, b) -> None:
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)


def test_chunks_never_straddle_an_epoch() -> None:
    groups = epoch_chunks([13], 2, 5)
    assert groups == [
        [slice(0, 5), slice(5, 10), slice(10, 13)],
        [slice(13, 18), slice(18, 23), slice(23, 26)],
    ]
    assert epoch_chunks([13], 2, None) == [[slice(0, 13)], [slice(13, 26)]]


def test_blocks_end_at_every_observed_epoch() -> None:
    assert plan_blocks(0, 10, 4) == [range(0, 4), range(4, 8), range(8, 10)]
    assert plan_blocks(0, 10, 4, [3, 6, 10]) == [range(0, 3), range(3, 6), range(6, 10)]
    assert plan_blocks(5, 12, 3, [6]) == [range(5, 6), range(6, 9), range(9, 12)]  # a resumed fit starts at 5


@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_blocks_equal_one_epoch_per_step(tmp_path, module_class, optimizer: str) -> None:
    reference = make_module(module_class, optimizer, 1, rows_per_update=5)
    logged, epoch_losses = fit(reference, tmp_path / "one")
    block = make_module(module_class, optimizer, 3, rows_per_update=5)
    logged_block, _ = fit(block, tmp_path / "block")

    assert block.trainer.global_step == 3 and reference.trainer.global_step == EPOCHS
    assert block.updates_done == reference.updates_done == 3 * EPOCHS
    assert block.epochs_done == reference.epochs_done == EPOCHS
    assert_same_weights(reference, block)
    # every epoch's training loss, logged at that epoch (counted from 1) with the updates done as step: the
    # one-epoch run's loss in float64, and its logged float32 values and metrics to float32 precision
    assert logged_block.epochs("train/loss") == list(range(1, EPOCHS + 1)) == logged.epochs("train/loss")
    assert logged_block.steps("train/loss") == list(range(3, 3 * EPOCHS + 1, 3)) == logged.steps("train/loss")
    torch.testing.assert_close(logged_block.series("train/loss"), epoch_losses, rtol=0, atol=1e-12)
    for tag in ("train/loss", "train/accuracy", "train/precision", "train/recall", "train/f1"):
        torch.testing.assert_close(logged_block.series(tag), logged.series(tag), rtol=1e-6, atol=0)
    # validation at block ends only, at the block's last epoch, with the one-epoch run's values there
    val = dict(zip(logged.epochs("val/loss"), logged.series("val/loss")))
    assert logged_block.epochs("val/loss") == [3, 6, 7]
    torch.testing.assert_close(logged_block.series("val/loss"), [val[3], val[6], val[7]], rtol=0, atol=1e-12)
    if optimizer.endswith("per_epoch"):  # StepLR(step_size=2) stepped once per epoch: 7 epochs -> 3 halvings
        assert block.lr_schedulers().last_epoch == EPOCHS
        assert block.optimizers().param_groups[0]["lr"] == pytest.approx(0.3 / 8)


@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
def test_full_batch_blocks_equal_one_epoch_per_step(tmp_path, module_class) -> None:
    """One update per epoch: the manual module's block runs on the NumPy path, the one-epoch run on torch."""
    reference = make_module(module_class, "momentum", 1, rows_per_update=None)
    _, epoch_losses = fit(reference, tmp_path / "one")
    block = make_module(module_class, "momentum", 3, rows_per_update=None)
    logged_block, _ = fit(block, tmp_path / "block")
    assert block.updates_done == EPOCHS
    assert_same_weights(reference, block)
    torch.testing.assert_close(logged_block.series("train/loss"), epoch_losses, rtol=0, atol=1e-12)


def test_auto_gives_about_fifty_blocks(tmp_path) -> None:
    module = make_module(ManualModule, "sgd", "auto", rows_per_update=None)
    fit(module, tmp_path, epochs=120, limit_val_batches=0)
    assert module.trainer.global_step == 40 and module.updates_done == 120  # ceil(120 / 50) = 3 epochs per block


def test_checkpoints_are_named_by_notebook_epoch_and_update(tmp_path) -> None:
    module = make_module(ManualModule, "sgd", 3, rows_per_update=5)
    fit(
        module,
        tmp_path,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1)],
    )
    names = sorted(p.name for p in (tmp_path / "ckpt").glob("*.ckpt"))
    assert names == ["epoch=3-step=9.ckpt", "epoch=6-step=18.ckpt", "epoch=7-step=21.ckpt"]


@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
def test_resume_at_a_block_boundary_equals_the_uninterrupted_run(tmp_path, module_class) -> None:
    whole = make_module(module_class, "adam", 3, rows_per_update=5)
    logged_whole, _ = fit(whole, tmp_path / "whole")

    first = make_module(module_class, "adam", 3, rows_per_update=5)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit(first, tmp_path / "first", epochs=6, enable_checkpointing=True, callbacks=[checkpoints])
    assert first.trainer.global_step == 2
    last = str(tmp_path / "ckpt" / "last.ckpt")
    first.trainer.save_checkpoint(tmp_path / "after_fit.ckpt")
    for path in (last, tmp_path / "after_fit.ckpt"):
        stored = torch.load(path, weights_only=True)
        assert (stored["epochs_per_step"], stored["notebook_epochs_done"]) == (3, 6)

    def restored() -> dict[str, object]:
        """The callback the checkpoint was saved with, saving nothing more: Lightning restores its state and has
        neither a missing callback nor a changed or non-empty checkpoint folder to warn about."""
        return dict(enable_checkpointing=True, callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=0)])

    # the same block size, and another: blocks group the same updates, so either continues exactly
    for block_size in (3, 2):
        resumed = make_module(module_class, "adam", block_size, rows_per_update=5)
        logged_resumed, _ = fit(resumed, tmp_path / f"resumed{block_size}", ckpt_path=last, **restored())
        assert resumed.updates_done == whole.updates_done and resumed.epochs_done == EPOCHS
        assert_same_weights(whole, resumed)
        assert logged_resumed.epochs("train/loss") == [7]
        assert logged_resumed.series("train/loss") == pytest.approx(logged_whole.series("train/loss")[6:], abs=1e-12)


def test_a_run_in_blocks_resumes_to_more_epochs(tmp_path) -> None:
    """``auto`` sizes blocks from max_epochs, so a longer resumed run makes larger ones: the same updates."""
    whole = make_module(ManualModule, "momentum", "auto", rows_per_update=5)
    fit(whole, tmp_path / "whole", epochs=200, limit_val_batches=0)
    first = make_module(ManualModule, "momentum", "auto", rows_per_update=5)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    fit(first, tmp_path / "first", epochs=100, limit_val_batches=0, enable_checkpointing=True, callbacks=[checkpoints])
    assert first.blocks.size == 2
    resumed = make_module(ManualModule, "momentum", "auto", rows_per_update=5)
    restored = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    fit(
        resumed,
        tmp_path / "resumed",
        epochs=200,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[restored],
        ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"),
    )
    assert resumed.blocks.size == 4 and resumed.epochs_done == 200
    assert_same_weights(whole, resumed)


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        (dict(check_val_every_n_epoch=2), "trainer.check_val_every_n_epoch=2"),
        (dict(callbacks=[ModelCheckpoint(every_n_epochs=2)], enable_checkpointing=True), "every_n_epochs=2"),
        (dict(callbacks=[EarlyStopping("val/loss", patience=3)]), "EarlyStopping(patience=3)"),
        (dict(min_epochs=2), "trainer.min_epochs=2"),
        (dict(max_steps=2), "trainer.max_steps=2"),
    ],
    ids=["check_val", "checkpoint_every", "early_stopping", "min_epochs", "max_steps"],
)
def test_lightning_settings_that_count_epochs_turn_blocks_off_or_are_refused(tmp_path, setting, named) -> None:
    explicit = make_module(ManualModule, "sgd", 3, rows_per_update=5)
    with pytest.raises(ValueError, match=re.escape(named) + ".*set model.epochs_per_step to 1"):
        fit(explicit, tmp_path / "explicit", epochs=200, **setting)
    auto = make_module(ManualModule, "sgd", "auto", rows_per_update=5)
    fit(auto, tmp_path / "auto", epochs=6, **setting)  # 6 epochs: one per Lightning epoch, as asked
    assert auto.blocks.size == 1


def test_explicit_blocks_refuse_epochs_of_several_batches(tmp_path) -> None:
    module = make_module(ManualModule, "sgd", 3, rows_per_update=None)
    data = Shuffled()
    data.batch_size = 4
    trainer = quiet_trainer(tmp_path, max_epochs=3)
    with pytest.raises(ValueError, match="set data.batch_size to at least the 13 training rows"):
        trainer.fit(module, datamodule=data)


def test_grouped_loader_serves_each_epoch_in_its_own_order() -> None:
    x = torch.arange(6.0)
    alone = TensorBatchLoader((x,), batch_size=6, shuffle=True, seed=1)
    orders = []
    for epoch in range(5):
        alone.set_epoch(epoch)
        orders.append(next(iter(alone))[0])
    grouped = TensorBatchLoader((x,), batch_size=6, shuffle=True, seed=1)
    for epochs in ([0, 1], [2, 3], [4]):
        grouped.set_epochs(range(epochs[0], epochs[-1] + 1))
        assert torch.equal(next(iter(grouped))[0], torch.cat([orders[e] for e in epochs]))
    grouped.set_epochs(range(0, 2))  # an order dropped from the sampler's memory is drawn again, the same
    assert torch.equal(next(iter(grouped))[0], torch.cat(orders[:2]))


def test_moons_config_logs_every_epoch_to_tensorboard(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from train import make_cli

    cli = make_cli(
        [
            "fit",
            "--config",
            str(ROOT / "configs/moons.yaml"),
            "--trainer.max_epochs=100",
            "--trainer.enable_progress_bar=true",
            "--test_after_fit=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    assert cli.model.blocks.setting == "auto"
    assert cli.trainer.progress_bar_callback.train_progress_bar.desc.startswith("Epochs 99-100 of 100")
    assert cli.trainer.global_step == 50 and cli.model.updates_done == 100  # ceil(100 / 50) = 2 epochs per step
    run_dir = Path(cli.trainer.log_dir)
    assert json.loads((run_dir / "weights_final.json").read_text())["epoch"] == 100
    events = EventAccumulator(str(run_dir)).Reload()
    # the config's epoch-keyed logger: every epoch at its count of epochs done, validation after each block
    assert [e.step for e in events.Scalars("train/loss_epoch")] == list(range(1, 101))
    assert [e.step for e in events.Scalars("val/f1_epoch")] == list(range(2, 101, 2))


def test_dashboard_writes_every_update_loss_once_in_order(tmp_path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from callbacks.tensorboard_dashboard import UPDATE_LOSS_TAG, TensorBoardDashboard

    module = make_module(ManualModule, "sgd", 3, rows_per_update=5)
    dashboard = TensorBoardDashboard(hparams=False, histograms=False, decision_boundary=False, weights_text=False)
    logger = TensorBoardLogger(tmp_path, name="blocks")
    trainer = quiet_trainer(tmp_path, max_epochs=EPOCHS, logger=logger, callbacks=[dashboard], limit_val_batches=0)
    trainer.fit(module, datamodule=Shuffled())
    events = EventAccumulator(logger.log_dir).Reload()
    written = events.Scalars(UPDATE_LOSS_TAG)
    assert [e.step for e in written] == list(range(1, 3 * EPOCHS + 1))  # 3 updates per epoch, numbered by update
    assert len(dashboard.update_losses) == 3 * EPOCHS
