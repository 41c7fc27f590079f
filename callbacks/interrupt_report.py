"""What Ctrl-C during ``fit`` prints: the checkpoint to resume from, and how."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from callbacks.checkpoints import CheckpointError, check_checkpoint
from models.console import say


def newest_whole_checkpoint(trainer: pl.Trainer) -> Path | None:
    """The newest checkpoint file that is whole. Ctrl-C during a save leaves that file missing (Lightning writes
    through a temporary file), although ModelCheckpoint already names it as its best or last path."""
    files = {
        path
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint) and callback.dirpath
        for path in Path(callback.dirpath).glob("*.ckpt")
    }
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            check_checkpoint(path)
        except CheckpointError:
            continue
        return path
    return None


class InterruptReport(pl.Callback):
    """Ctrl-C during fit says which checkpoint to resume from (Lightning then exits with status 1)."""

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != TrainerFn.FITTING:
            return
        path = newest_whole_checkpoint(trainer)
        say(
            f"Interrupted. Last checkpoint: {path}\nResume with the same command plus --ckpt_path {path}"
            if path
            else "Interrupted before the first checkpoint was saved."
        )
