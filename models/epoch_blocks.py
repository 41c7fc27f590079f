"""Several notebook epochs in one Lightning training step, for runs whose epoch is one small batch.

Lightning spends milliseconds around every epoch (hooks, logging, validation, checkpoints), while an
epoch of a 2-10-2 net on 210 rows is microseconds of arithmetic. So one step may run K epochs: the
loader serves them as one batch, each epoch in its own order (``TensorBatchLoader.group_epochs``),
:func:`models.engine.run_updates` cuts their updates per epoch, and :func:`per_epoch_metrics` turns
the updates' losses and logits into each epoch's metrics, logged at that epoch.
"""

from __future__ import annotations

import math
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import Tensor
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from models.engine import run_updates
from models.spec import MLPSpec

EpochsPerStep = int | Literal["auto"]

# "auto" aims at this many training steps per run, hence as many validations and checkpoints.
AUTO_STEPS_PER_RUN = 50


def check_epochs_per_step(setting: EpochsPerStep) -> None:
    if setting != "auto" and (isinstance(setting, bool) or not isinstance(setting, int) or setting < 1):
        raise ValueError(f"model.epochs_per_step must be a whole number >= 1 or 'auto', got {setting!r}")


def resolve_epochs_per_step(setting: EpochsPerStep, max_epochs: int | None, why_not: str | None) -> int:
    """Epochs per training step for this fit.

    ``why_not`` says why this run's epochs cannot be grouped (None when they can): ``"auto"`` then
    falls back to one epoch per step, an explicit K > 1 is refused with that reason.
    """
    if setting == "auto":
        if why_not is not None or max_epochs is None or max_epochs < 1:
            return 1
        return math.ceil(max_epochs / AUTO_STEPS_PER_RUN)
    if setting > 1 and why_not is not None:
        raise ValueError(
            f"model.epochs_per_step={setting} runs several epochs in one training step, but {why_not}. "
            "Set model.epochs_per_step to 1 (or 'auto', which falls back to 1 here)."
        )
    return setting


def per_epoch_metrics(spec: MLPSpec, losses: Tensor, preds: Tensor, truth: Tensor, epochs: int) -> dict[str, Tensor]:
    """``train/*`` values of each of ``epochs`` equal epochs, one row of the tensors per epoch.

    The loss is the mean of the epoch's update losses, as a one-epoch step logs it; the metrics are
    torchmetrics' own, computed per epoch (``multidim_average="samplewise"``) in one call each.
    """
    values = {"train/loss": losses.reshape(epochs, -1).mean(1)}
    if spec.is_classifier:
        preds, truth = preds.reshape(epochs, -1), truth.reshape(epochs, -1)
        common = dict(num_classes=spec.num_classes, multidim_average="samplewise", validate_args=False)
        values["train/accuracy"] = multiclass_accuracy(preds, truth, average="micro", **common)
        values["train/precision"] = multiclass_precision(preds, truth, average="macro", **common)
        values["train/recall"] = multiclass_recall(preds, truth, average="macro", **common)
        values["train/f1"] = multiclass_f1_score(preds, truth, average="macro", **common)
    else:
        error = (preds - truth).reshape(epochs, -1)
        values["train/mse"] = error.square().sum(1) / error.shape[1]
        values["train/mae"] = error.abs().sum(1) / error.shape[1]
    return values


def rows_per_epoch(values: dict[str, Tensor]) -> list[dict[str, float]]:
    """One ``{tag: value}`` per epoch, with one device sync for the whole block."""
    table = torch.stack([v.double() for v in values.values()], 1).cpu().tolist()
    return [dict(zip(values, row)) for row in table]


class EpochLabel(pl.Callback):
    """Labels the progress bar with the epochs the running step holds ("Epochs 20-39 of 1000"), since
    Lightning's own epoch counter counts blocks. The modules add it themselves (``configure_callbacks``).

    It relabels at batch start, after the bar has written its own label at epoch start.
    """

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        bar = trainer.progress_bar_callback
        if not isinstance(bar, TQDMProgressBar) or getattr(pl_module, "block_epochs", 1) == 1:
            return
        first = pl_module.epochs_done
        total = pl_module.notebook_max_epochs()
        last = first + pl_module.block_epochs if total is None else min(first + pl_module.block_epochs, total)
        label = f"Epoch {first}" if last - first == 1 else f"Epochs {first}-{last - 1}"
        bar.train_progress_bar.set_description(label if total is None else f"{label} of {total}")


class EpochBlocks:
    """The LightningModule side of epoch blocks (mixed into :class:`models.lightning_modules.MLPModule`):
    choosing K for a fit, training a block, and logging each of its epochs at that epoch."""

    def configure_callbacks(self) -> list[pl.Callback]:
        return [EpochLabel()]

    def notebook_max_epochs(self) -> int | None:
        """``trainer.max_epochs``, which counts epochs whatever the block size; None when unbounded."""
        epochs = self.trainer.max_epochs
        return epochs if epochs is not None and epochs >= 0 else None

    def _why_epochs_cannot_be_grouped(self) -> str | None:
        trainer = self.trainer
        loader = trainer.train_dataloader
        if trainer.world_size > 1:
            return f"the run uses {trainer.world_size} processes (epoch blocks need one)"
        if not hasattr(loader, "group_epochs"):
            return "the training data is not served by a TensorBatchLoader"
        if len(loader) != 1 or trainer.num_training_batches != 1:
            return (
                f"an epoch is {len(loader)} batches of data.batch_size={loader.batch_size}; set data.batch_size to at "
                f"least the {loader.permutation.n} training rows (and model.rows_per_update for smaller updates)"
            )
        return None

    def _start_epoch_blocks(self) -> None:
        trainer = self.trainer
        self.block_epochs = resolve_epochs_per_step(
            self.epochs_per_step, self.notebook_max_epochs(), self._why_epochs_cannot_be_grouped()
        )
        resumed = self.resumed_block_epochs
        if resumed is not None and resumed != self.block_epochs and trainer.current_epoch > 0:
            raise ValueError(
                f"the checkpoint being resumed ran {resumed} epoch(s) per training step and this run would run "
                f"{self.block_epochs}, which would change the epochs each step holds. Resume with "
                f"model.epochs_per_step={resumed}."
            )
        self.epochs_done = trainer.current_epoch * self.block_epochs
        if self.block_epochs > 1:
            self.epoch_rows = trainer.train_dataloader.batch_rows()[0]
            limit = self.notebook_max_epochs()
            if limit is not None and self.epochs_done >= limit:
                trainer.should_stop = True  # resumed from the run's last block: nothing left to train

    def _training_block(self, x: Tensor, target: Tensor) -> Tensor:
        """Several epochs in one step; each epoch's training metrics go to the loggers at that epoch.

        Lightning's ``self.log`` would log once per step, so the per-epoch values are written with
        ``logger.log_metrics(step=epoch)``; the block's last epoch is also handed to ``self.log`` (not
        to the loggers) for the progress bar, checkpoint monitors and callbacks.
        """
        epochs = x.shape[0] // self.epoch_rows
        self.update_losses, logits = run_updates(self, x, target, epoch_rows=[self.epoch_rows] * epochs)
        self.stop_if_diverged(epochs)
        self.updates_done += len(self.update_losses)
        preds, truth = self._metric_inputs(logits.detach(), target)
        values = per_epoch_metrics(self.spec, self.update_losses, preds, truth, epochs)
        for epoch, row in enumerate(rows_per_epoch(values), start=self.epochs_done):
            self._log_at_epoch(row, epoch)
        self.epochs_done += epochs
        last = {tag: value[-1] for tag, value in values.items()}
        for tag, value in last.items():
            self.log(tag, value, on_step=False, on_epoch=True, logger=False, prog_bar=tag == "train/loss", batch_size=1)
        return values["train/loss"].mean()

    def _log_at_epoch(self, values: dict[str, float], epoch: int) -> None:
        """Write one notebook epoch's metrics (``epoch`` 0-based) as Lightning writes an epoch's, with its
        ``epoch`` entry, so an epoch-keyed logger files them under the same tags and steps."""
        for logger in self.loggers:
            logger.log_metrics({**values, "epoch": epoch}, step=epoch)
