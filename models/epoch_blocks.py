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
