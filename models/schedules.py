"""Learning-rate schedules for both modules, counted in optimiser updates.

The native module with one update per batch leaves stepping to Lightning. The manual module (and
either module with ``rows_per_update``) steps its schedule itself after every update, or once per
epoch, as Lightning's manual optimisation requires. A schedule that spans the whole run
(``OneCycleLR``) is told the run's exact number of updates unless its config gives one.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable

SchedulerInterval = Literal["step", "epoch"]


class ScheduleError(ValueError):
    """A schedule that cannot do what the run asks of it: a setting to change, not a bug."""


def check_rows_per_update(rows_per_update: int | None) -> None:
    if rows_per_update is not None and rows_per_update < 1:
        raise ValueError(f"rows_per_update must be >= 1 or None, got {rows_per_update}")


def updates_per_batch(rows: int, rows_per_update: int | None) -> int:
    return 1 if rows_per_update is None else math.ceil(rows / rows_per_update)


def _scheduler_class(factory: Callable[..., object]) -> type | None:
    """The class a CLI-built factory (a functools.partial) or a plain class instantiates."""
    for candidate in (factory, getattr(factory, "func", None), *getattr(factory, "args", ())):
        if inspect.isclass(candidate):
            return candidate
    return None


def build_lr_scheduler(
    factory: LRSchedulerCallable, optimizer: torch.optim.Optimizer, total_updates: Callable[[], int]
) -> torch.optim.lr_scheduler.LRScheduler:
    """``factory(optimizer)``, filling in ``total_steps`` for a schedule that needs the run's length
    (OneCycleLR) when neither ``total_steps`` nor ``epochs`` was configured."""
    cls = _scheduler_class(factory)
    keywords = getattr(factory, "keywords", {})
    needs_length = cls is not None and "total_steps" in inspect.signature(cls).parameters
    if needs_length and keywords.get("total_steps") is None and keywords.get("epochs") is None:
        return factory(optimizer, total_steps=total_updates())
    return factory(optimizer)


def planned_updates(trainer: pl.Trainer, rows_per_update: int | None) -> int:
    """Optimiser updates the whole fit will make on this rank (what OneCycleLR must span)."""
    if not math.isfinite(trainer.estimated_stepping_batches):  # also loads the train loader
        raise ValueError(
            "the learning-rate schedule needs the run's length: set trainer.max_epochs or trainer.max_steps, "
            "or give the scheduler total_steps"
        )
    loader = trainer.train_dataloader
    if loader is None:  # a run bounded by max_steps alone has not loaded it yet
        loader = trainer.datamodule.train_dataloader()
    batches = trainer.num_training_batches if math.isfinite(trainer.num_training_batches) else len(loader)
    if hasattr(loader, "batch_rows"):
        rows = loader.batch_rows()[:batches]
    else:  # a plain DataLoader: assume full batches, which can only overcount the last one
        rows = [loader.batch_size or 1] * batches
    per_batch = [updates_per_batch(r, rows_per_update) for r in rows]
    epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
    if trainer.max_steps < 0:
        return sum(per_batch) * epochs
    # Lightning stops after max_steps training steps; a step finishes all its updates.
    steps = trainer.max_steps if epochs is None else min(trainer.max_steps, len(per_batch) * epochs)
    return sum(per_batch[i % len(per_batch)] for i in range(steps))
