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

import torch
from lightning.pytorch.cli import LRSchedulerCallable

SchedulerInterval = Literal["step", "epoch"]


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
