"""Several notebook epochs in one Lightning epoch, for runs whose epoch is one small batch, planned so that every
epoch a user sets or reads is still a notebook epoch.

Lightning spends milliseconds around every epoch (hooks, logging, validation, checkpoints), while an epoch of a
2-10-2 net on 210 rows is microseconds of arithmetic. So one Lightning epoch may run a *block* of epochs: the
loader serves them as one batch, each in its own order (``TensorBatchLoader.set_epochs``), and the update loop
cuts their updates per epoch. What counts epochs keeps counting notebook epochs:

- blocks end at every epoch a callback observes (``EpochObserver``: histograms every 100 epochs, a gradient
  check every 50), so the observation sees exactly that epoch's weights;
- the module counts notebook epochs (``epochs_done``) and logs them as ``epoch`` and its optimiser updates as
  ``step``, which Lightning's checkpoint names and the epoch-keyed logger read;
- Lightning's own settings that count its epochs or steps (``check_val_every_n_epoch``, ``ModelCheckpoint``'s
  ``every_n_epochs``, ``EarlyStopping``, ``min_epochs``, ``max_steps``) would count blocks: with any of them, blocks
  are off under ``epochs_per_step: auto`` (Lightning's epochs are then notebook epochs), and an explicit block
  size is refused, naming the setting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

from models.console import say

EpochsPerStep = int | Literal["auto"]

# "auto" aims at this many blocks per run, hence as many validations and checkpoints.
AUTO_BLOCKS_PER_RUN = 50


@runtime_checkable
class EpochObserver(Protocol):
    """A callback that looks at the net after certain notebook epochs: blocks end at each of them."""

    def observed_epochs(self, max_epochs: int) -> Iterable[int]:
        """Epoch counts (1-based: after that many epochs) at which the callback observes the net."""


def check_epochs_per_step(setting: EpochsPerStep) -> None:
    if setting != "auto" and (isinstance(setting, bool) or not isinstance(setting, int) or setting < 1):
        raise ValueError(f"model.epochs_per_step must be a whole number >= 1 or 'auto', got {setting!r}")


def plan_blocks(start: int, stop: int, size: int, boundaries: Iterable[int] = ()) -> list[range]:
    """Notebook epochs (0-based) of each Lightning epoch from epoch ``start`` to ``stop``: runs of at most
    ``size`` epochs that end after every boundary (an epoch count, 1-based) in between."""
    ends = sorted({b for b in boundaries if start < b < stop} | {stop})
    blocks, first = [], start
    for end in ends:
        while first < end:
            last = min(first + size, end)
            blocks.append(range(first, last))
            first = last
    return blocks


def lightning_epoch_settings(trainer: pl.Trainer) -> list[str]:
    """Lightning's own settings that count its epochs or steps, which inside blocks would count blocks."""
    found = []
    if trainer.check_val_every_n_epoch not in (None, 1):
        found.append(f"trainer.check_val_every_n_epoch={trainer.check_val_every_n_epoch}")
    if trainer.min_epochs:
        found.append(f"trainer.min_epochs={trainer.min_epochs}")
    if trainer.max_steps != -1:
        found.append(f"trainer.max_steps={trainer.max_steps}")
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and (callback.every_n_epochs or 0) > 1:
            found.append(f"ModelCheckpoint(every_n_epochs={callback.every_n_epochs})")
        if isinstance(callback, EarlyStopping):
            found.append(f"EarlyStopping(patience={callback.patience})")
    return found


@dataclass
class EpochBlocks:
    """The block plan of one fit and the count of notebook epochs done; owned by the LightningModule.

    ``setting`` is ``model.epochs_per_step``; ``size`` the block size this fit uses; ``plan[i]`` the notebook
    epochs of the fit's i-th Lightning epoch, ``first_lightning_epoch`` being Lightning's count at the fit's start
    (a resumed fit starts where its checkpoint ended).
    """

    setting: EpochsPerStep = 1
    size: int = 1
    epochs_done: int = 0
    plan: list[range] = field(default_factory=list)
    first_lightning_epoch: int = 0

    def start(self, trainer: pl.Trainer, why_not: str | None, observed: Iterable[int]) -> None:
        """Choose this fit's block size and plan from the epochs done (0, or a checkpoint's) to ``max_epochs``.

        ``why_not`` says why this run's epochs cannot be grouped (None when they can): ``auto`` then falls back to
        one epoch per Lightning epoch, and an explicit size above 1 is refused with that reason.
        """
        limit = notebook_max_epochs(trainer)
        settings = lightning_epoch_settings(trainer)
        counting = f"{', '.join(settings)} count{'s' if len(settings) == 1 else ''} Lightning's epochs or steps"
        if self.setting == "auto":
            self.size = 1 if why_not or limit is None else max(1, math.ceil(limit / AUTO_BLOCKS_PER_RUN))
            if settings and self.size > 1:
                say(f"One epoch per Lightning epoch (epoch blocks off): {counting}.")
                self.size = 1
        elif self.setting > 1 and (why_not or settings):
            if why_not:
                reason, fix = why_not, "set model.epochs_per_step to 1 (or 'auto', which falls back to 1 here)"
            else:
                reason = f"{counting}, which would then be blocks of epochs"
                fix = "drop it, or set model.epochs_per_step to 1 so that it counts notebook epochs"
            raise ValueError(f"model.epochs_per_step={self.setting} makes blocks of epochs, but {reason}; {fix}.")
        else:
            self.size = self.setting
        self.first_lightning_epoch = trainer.current_epoch
        stop = self.epochs_done if limit is None else max(limit, self.epochs_done)
        if self.size == 1:
            self.plan = []  # one notebook epoch per Lightning epoch, however many there are
        else:
            self.plan = plan_blocks(self.epochs_done, stop, self.size, observed)
        if limit is not None and self.epochs_done >= limit:
            trainer.should_stop = True  # resumed from the run's end: nothing left to train

    def epochs_of(self, lightning_epoch: int) -> range:
        """The notebook epochs (0-based) that Lightning epoch ``lightning_epoch`` trains."""
        if not self.plan:
            return range(self.epochs_done, self.epochs_done + 1)
        index = lightning_epoch - self.first_lightning_epoch
        return self.plan[index] if index < len(self.plan) else range(self.epochs_done, self.epochs_done)

    def finished(self, trainer: pl.Trainer) -> bool:
        limit = notebook_max_epochs(trainer)
        return limit is not None and self.epochs_done >= limit

    def state_dict(self) -> dict[str, int]:
        return {"epochs_per_step": self.size, "notebook_epochs_done": self.epochs_done}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.epochs_done = int(state.get("notebook_epochs_done", 0))


def epochs_done(trainer: pl.Trainer, pl_module: pl.LightningModule) -> int:
    """Notebook epochs trained so far: the module's count (this project's modules), else Lightning's."""
    done = getattr(pl_module, "epochs_done", None)
    return done if isinstance(done, int) else trainer.current_epoch


def every_n(interval: int, max_epochs: int | None) -> range:
    """The epoch counts 1-based multiples of ``interval`` up to ``max_epochs`` (none for an interval of 0)."""
    if interval <= 0 or max_epochs is None or max_epochs < 0:
        return range(0)
    return range(interval, max_epochs + 1, interval)


def notebook_max_epochs(trainer: pl.Trainer) -> int | None:
    """``trainer.max_epochs``, which counts notebook epochs whatever the block size; None when unbounded."""
    epochs = trainer.max_epochs
    return epochs if epochs is not None and epochs >= 0 else None


class EpochLabel(pl.Callback):
    """Labels the progress bar with the notebook epochs the running Lightning epoch holds, counted from 1 as every
    log counts them ("Epochs 21-40 of 1000", "Epoch 3 of 30"): Lightning's own label counts blocks, from 0. The
    modules add it themselves (``configure_callbacks``).

    It relabels at batch start, after the bar has written its own label at epoch start.
    """

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        bar = trainer.progress_bar_callback
        blocks = getattr(pl_module, "blocks", None)
        if not isinstance(bar, TQDMProgressBar) or not isinstance(blocks, EpochBlocks) or batch_idx > 0:
            return
        epochs = blocks.epochs_of(trainer.current_epoch)
        label = f"Epoch {epochs.start + 1}" if len(epochs) == 1 else f"Epochs {epochs.start + 1}-{epochs.stop}"
        total = notebook_max_epochs(trainer)
        bar.train_progress_bar.set_description(label if total is None else f"{label} of {total}")
