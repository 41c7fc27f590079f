"""A progress bar that counts epochs, also when one training step runs a block of them."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class EpochProgressBar(TQDMProgressBar):
    """Lightning's bar, labelled with the epochs the current step runs ("Epochs 20-39 of 1000").

    With ``model.epochs_per_step`` Lightning's own epoch counter counts blocks, not epochs.
    """

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        per_step = getattr(pl_module, "block_epochs", 1)
        first = trainer.current_epoch * per_step
        total = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else None
        last = first + per_step if total is None else min(first + per_step, total)
        label = f"Epoch {first}" if last - first == 1 else f"Epochs {first}-{last - 1}"
        self.train_progress_bar.set_description(label if total is None else f"{label} of {total}")
