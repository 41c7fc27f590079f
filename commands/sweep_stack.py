"""One stack of a sweep, trained as one Lightning fit: its block plan, progress bar, checkpoints and Ctrl-C."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from callbacks.checkpoints import AtomicCheckpointIO
from callbacks.progress import PlainProgress
from commands.sweep_grid import Member, SweepError
from commands.sweep_memory import epochs_per_block
from models.console import say
from models.epoch_blocks import plan_blocks
from models.sweep_module import StackedData, SweepModule, member_gradient_errors, stack_loader


class WithoutBlockCount(logging.Filter):
    """Drops Lightning's "`Trainer.fit` stopped: `max_epochs=2` reached.": a stack's Trainer counts blocks of
    epochs, so beside ``--trainer.max_epochs 10000`` that line misleads; the progress bar counts notebook epochs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("`Trainer.fit` stopped: `max_epochs=")


class StackProgressBar(TQDMProgressBar):
    """Lightning's bar, titled with the stack it trains and counting notebook epochs: a sweep's stacks (chunks of
    at most ``max_members``) each get a Trainer of their own, whose epochs are blocks of notebook epochs."""

    def __init__(self, title: str, epochs: int) -> None:
        super().__init__()
        self.title, self.epochs = title, epochs

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        if batch_idx == 0:  # after Lightning's own "Epoch <n>" label, which counts blocks from 0
            block = pl_module.plan[trainer.current_epoch]
            epochs = f"epoch {block.stop}" if len(block) == 1 else f"epochs {block.start + 1}-{block.stop}"
            self.train_progress_bar.set_description(f"{self.title}: {epochs} of {self.epochs}")

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, int | str | float]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the tail of "version_<n>/stack_<i>"; the title names the stack
        return metrics


class StackProgressLines(PlainProgress):
    """A few plain lines per stack where a bar would leave debris, titled with the stack and counting its notebook
    epochs (the stack's Lightning epochs are blocks of them)."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def epochs(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[int, int | None]:
        return len(pl_module.train_losses), pl_module.epochs

    def label(self, pl_module: pl.LightningModule) -> str:
        return self.title


class StackCheckpoint(pl.Callback):
    """``last.ckpt`` after every block: the stacked weights, every member's optimiser state and the results so far.
    Ctrl-C names the command that goes on from it."""

    def __init__(self, path: Path, resume_command: str) -> None:
        self.path, self.resume_command = path, resume_command

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # weights_only=False said outright: the whole state is the point, and Lightning logs its default every save
        trainer.save_checkpoint(self.path, weights_only=False)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            saved = "" if self.path.is_file() else " (no block of this stack had finished; it starts again)"
            say(f"Interrupted{saved}. Resume with:\n{self.resume_command}")


def check_gradients(module: SweepModule, data: StackedData, settings: dict[str, Any]) -> None:
    """The config's GradientCheck, per member: each member's hand-derived gradients against autograd on the same
    rows, graded with the check's tolerances; a failing check stops the sweep when ``stop_on_failure`` says so."""
    errors = member_gradient_errors(module, data.members, int(settings.get("num_examples", 4)))
    pass_tol, ok_tol = float(settings.get("pass_tol", 1e-7)), float(settings.get("ok_tol", 1e-4))
    worst = float(np.max(errors))
    grade = "pass" if worst <= pass_tol else "OK" if worst <= ok_tol else "fail"
    members = f"{len(errors)} member{'s' if len(errors) != 1 else ''}"
    say(
        f"Gradient check, {members}: worst relative error of the hand-derived gradients against autograd "
        f"{worst:.2e} ({grade}; pass <= {pass_tol:g}, OK <= {ok_tol:g})"
    )
    if grade == "fail" and settings.get("stop_on_failure"):
        raise SweepError(
            f"the gradient check failed for member {module.names[int(np.argmax(errors))]} (relative error "
            f"{worst:.2e} > {ok_tol:g}); the hand-derived gradients disagree with autograd"
        )


def check_same_members(checkpoint: Path, names: list[str]) -> None:
    """A resumed stack must be the one its checkpoint holds: same members, in the same order."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["sweep_state"]["names"]
    if saved != names:

        def preview(members: list[str]) -> str:
            return ", ".join(members) if len(members) <= 6 else f"{', '.join(members[:3])}, ... ({len(members)} in all)"

        raise SweepError(
            f"--sweep.resume: {checkpoint} holds the members {preview(saved)}, but this sweep file and config make "
            f"{preview(names)} for that stack. Resume with the sweep file and config of that run, or drop "
            "--sweep.resume to start a new sweep"
        )


def train_stack(
    stack: list[Member],
    epochs: int,
    snapshots: list[int],
    dtype: torch.dtype,
    logger: TensorBoardLogger,
    trainer_settings: dict[str, Any],
    member_callbacks: dict[str, Any],
    resume_command: str,
    hand_derived: bool = True,
    callbacks: list[pl.Callback] | None = None,
    title: str = "stack",
) -> SweepModule:
    """One stack's fit. Its checkpoint (``<stack run>/checkpoints/last.ckpt``, written after every block) holds the
    stacked weights, every member's optimiser state and the results so far, so a sweep run again with
    ``--sweep.resume`` goes on from there exactly."""
    first = stack[0]
    names = [m.name for m in stack]
    per_block = epochs_per_block(stack, epochs, dtype)
    plan = plan_blocks(0, epochs, max(per_block, 1), snapshots)
    loader = stack_loader([m.data for m in stack], first.batch_size, first.shuffle, whole_epochs=per_block > 0)
    loader.set_epochs(plan[0])  # Lightning counts the loader's batches before the first epoch starts
    module = SweepModule(
        [m.spec for m in stack],
        [m.lr for m in stack],
        first.optimizer,
        first.rows_per_update,
        snapshots,
        names,
        plan,
        hand_derived,
        first.divergence,
    )
    module.to(dtype)
    data = StackedData([m.data for m in stack], loader)
    if "GradientCheck" in member_callbacks:
        check_gradients(module, data, member_callbacks["GradientCheck"].init_args.as_dict())
    last = Path(logger.log_dir) / "checkpoints" / "last.ckpt"
    resumed = last.is_file()
    if resumed:
        check_same_members(last, names)
    settings = dict(trainer_settings)
    progress_bar = settings.pop("enable_progress_bar", sys.stdout.isatty()) is not False
    checkpointing = settings.pop("enable_checkpointing", True) is not False
    settings.pop("precision", None)  # the stack's dtype, read from it
    trainer = pl.Trainer(
        max_epochs=len(plan),
        precision="64-true" if dtype == torch.float64 else "32-true",
        logger=logger,
        callbacks=[
            *([StackCheckpoint(last, resume_command)] if checkpointing else []),
            StackProgressBar(title, epochs) if progress_bar else StackProgressLines(title),
            *(callbacks or []),
        ],
        enable_model_summary=settings.pop("enable_model_summary", False),
        enable_progress_bar=progress_bar,
        enable_checkpointing=False,  # StackCheckpoint writes last.ckpt after every block
        plugins=[AtomicCheckpointIO()],  # written whole, in its own folder, as every command's checkpoints
        log_every_n_steps=1,
        **settings,
    )
    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # as train.py's WithoutCloudTips
    block_count = WithoutBlockCount()
    lightning_log.addFilter(block_count)
    try:
        with warnings.catch_warnings():
            # The stack's optimiser is models.optim's (one lr and state per member), not a torch.optim one.
            warnings.filterwarnings("ignore", message=".*configure_optimizers` returned `None`.*")
            trainer.fit(module, datamodule=data, ckpt_path=str(last) if resumed else None)
    finally:
        lightning_log.removeFilter(block_count)
    return module
