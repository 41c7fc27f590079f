"""A few plain progress lines where a progress bar would only leave debris (output to a file, CI): the epoch, of
how many, and the latest losses and F1. Silent while the trainer has a progress bar."""

from __future__ import annotations

import math

import lightning.pytorch as pl

from models.console import say
from models.epoch_blocks import epochs_done, notebook_max_epochs

SHOWN = ("train/loss", "val/loss", "val/f1")


class PlainProgress(pl.Callback):
    """About ``lines`` lines per fit, at evenly spaced notebook epochs, and always the last."""

    def __init__(self, lines: int = 5) -> None:
        self.lines = lines
        self.next_line = 1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.next_line = 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.progress_bar_callback is not None:
            return
        done, total = self.epochs(trainer, pl_module)
        if total is None or (done < self.due(total) and done < total):
            return
        while self.due(total) <= done:
            self.next_line += 1
        metrics = trainer.callback_metrics
        shown = ", ".join(f"{tag} {float(metrics[tag]):.4g}" for tag in SHOWN if tag in metrics)
        say(f"{self.label(pl_module)}: epoch {done} of {total}{': ' + shown if shown else ''}")

    def epochs(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[int, int | None]:
        """Notebook epochs done, and of how many."""
        return epochs_done(trainer, pl_module), notebook_max_epochs(trainer)

    def label(self, pl_module: pl.LightningModule) -> str:
        return type(pl_module).__name__

    def due(self, total: int) -> int:
        return math.ceil(total * self.next_line / self.lines)
