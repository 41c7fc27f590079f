"""Learning-rate schedules: stepped once per optimiser update in every training path, OneCycleLR
sized to the run, and the same weights whichever module or path runs the schedule."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.optim.lr_scheduler import OneCycleLR, StepLR

from datamodules.tensor_loader import TensorBatchLoader
from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from models.engine import unequal_update_counts
from tests.conftest import quiet_trainer
from tests.test_block_updates import WEEK04, train
from tests.test_cli import run_cli, week04_args

ONE_CYCLE = partial(OneCycleLR, max_lr=0.5)
SGD = partial(torch.optim.SGD, lr=0.1, momentum=0.9)


@pytest.mark.parametrize(
    "module_class,rows_per_update,batch_size,limit",
    [
        (ManualModule, None, 8, 20),  # one update per step, stepped by the module
        (ManualModule, 1, 400, None),  # NumPy block path
        (NativeModule, None, 8, 20),  # autograd, one update per step
        (NativeModule, 2, 40, 3),  # torch block path
    ],
)
def test_one_cycle_spans_exactly_the_updates_made(tmp_path, module_class, rows_per_update, batch_size, limit) -> None:
    module = module_class(MLPSpec(**WEEK04), optimizer=SGD, lr_scheduler=ONE_CYCLE, rows_per_update=rows_per_update)
    trainer = train(module, tmp_path, batch_size=batch_size, epochs=2, limit=limit)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, OneCycleLR)
    updates = {None: 2 * 20, 1: 2 * 400, 2: 2 * 3 * 20}[rows_per_update]
    assert module.updates_done == scheduler.total_steps == scheduler.last_epoch == updates
    if rows_per_update == 1:
        assert module.numpy_path is not None
    # A reference schedule stepped once per update: the last update used the cycle's final rate,
    # max_lr / (div_factor * final_div_factor), and the module's rate is where the reference's is now.
    reference = ONE_CYCLE(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), total_steps=updates)
    rates = [reference.get_last_lr()[0]]
    for _ in range(updates):
        reference.optimizer.step()
        reference.step()
        rates.append(reference.get_last_lr()[0])
    assert rates[-2] == pytest.approx(0.5 / 25 / 1e4, rel=1e-9)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(rates[-1], rel=1e-12)


def test_the_schedule_gives_the_same_weights_in_every_path(tmp_path) -> None:
    spec = dict(WEEK04, activation="tanh", bias=True)
    runs = {
        "manual per step": (ManualModule, None, 2, 50),
        "manual numpy block": (ManualModule, 2, 20, 5),
        "native per step": (NativeModule, None, 2, 50),
        "native torch block": (NativeModule, 2, 20, 5),
    }
    weights = {}
    for name, (cls, rows, batch, limit) in runs.items():
        module = cls(MLPSpec(**spec), optimizer=SGD, lr_scheduler=ONE_CYCLE, rows_per_update=rows)
        train(module, tmp_path / name.replace(" ", "_"), batch_size=batch, limit=limit)
        assert module.updates_done == 50
        weights[name] = [p.detach().clone() for p in module.parameters()]
    reference = weights.pop("manual per step")
    for name, params in weights.items():
        for a, b in zip(reference, params):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
def test_epoch_interval_steps_once_per_epoch(tmp_path, module_class) -> None:
    module = module_class(
        MLPSpec(**WEEK04),
        lr_scheduler=partial(StepLR, step_size=1, gamma=0.5),
        lr_scheduler_interval="epoch",
        rows_per_update=1,
    )
    trainer = train(module, tmp_path, batch_size=400, epochs=3)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_max_steps_bounds_the_schedule(tmp_path) -> None:
    module = ManualModule(MLPSpec(**WEEK04), lr_scheduler=ONE_CYCLE, rows_per_update=1)
    dm = Week04DataModule(batch_size=400)
    trainer = quiet_trainer(tmp_path, max_epochs=-1, max_steps=3, limit_val_batches=0)
    trainer.fit(module, datamodule=dm)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    # max_steps counts Lightning steps: 3 blocks of 400 one-row updates.
    assert trainer.global_step == 3
    assert module.updates_done == scheduler.total_steps == scheduler.last_epoch == 1200


def test_configured_total_steps_is_left_alone(tmp_path) -> None:
    module = ManualModule(MLPSpec(**WEEK04), lr_scheduler=partial(OneCycleLR, max_lr=0.5, total_steps=1000))
    trainer = train(module, tmp_path, batch_size=8, limit=10)
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == 1000


def test_ranks_with_unequal_update_counts_are_refused() -> None:
    # 401 rows on 2 ranks in global batches of 2 x 200: the tail of 1 row joins the only block, split
    # 201 / 200: with one row per update the ranks would make 201 and 200 updates.
    loader = TensorBatchLoader((torch.zeros(401, 2),), batch_size=200)
    rows = [loader.batch_rows(rank, 2) for rank in range(2)]
    assert rows == [[201], [200]]
    message = unequal_update_counts(rows, 1)
    assert message is not None and "[201, 200] rows" in message and "rows_per_update to null" in message
    assert unequal_update_counts(rows, 128) is None  # two updates each
    even = TensorBatchLoader((torch.zeros(400, 2),), batch_size=200)
    assert unequal_update_counts([even.batch_rows(r, 2) for r in range(2)], 1) is None


@pytest.mark.slow
def test_one_cycle_from_the_command_line(tmp_path) -> None:
    schedule = '{"class_path": "torch.optim.lr_scheduler.OneCycleLR", "init_args": {"max_lr": 0.3}}'
    monitor = ["--trainer.callbacks+", "LearningRateMonitor", "--trainer.callbacks.logging_interval", "step"]
    monitor += ["--trainer.log_every_n_steps", "1"]  # the monitor logs at the logging interval
    args = week04_args(tmp_path, "--trainer.max_epochs", "2", "--model.lr_scheduler", schedule, *monitor)
    result = run_cli("fit", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    events = EventAccumulator(str(next((tmp_path / "runs" / "week04").glob("version_*"))))
    events.Reload()
    rates = [e.value for e in events.Scalars("lr-SGD")]
    # One step per epoch (400 rows, one update each): the rate at the start of each of the 2 epochs, the
    # cycle's start max_lr / 25 and, 400 of 800 updates in, well into the annealing from 0.3.
    assert len(rates) == 2 and rates[0] == pytest.approx(0.3 / 25) and 0.2 < rates[1] < 0.3
