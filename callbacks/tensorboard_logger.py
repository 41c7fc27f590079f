"""A TensorBoardLogger with one step convention: epoch metrics keyed by notebook epoch, under ``*_epoch`` tags.

Lightning writes every ``self.log`` metric at its count of training batches, which in block mode (hundreds of
optimiser updates per batch, many epochs per Lightning epoch) is neither the update nor the epoch. The modules log
``epoch``, the number of notebook epochs done, with every stage's epoch values (:mod:`models.lightning_modules`);
this logger writes those values as ``<tag>_epoch`` at that epoch, and leaves the per-update curve to
:class:`callbacks.TensorBoardDashboard` (``train/loss_update``, keyed by optimiser update). The sampled step losses
Lightning logs every ``log_every_n_steps`` stay on the progress bar only.
"""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

EPOCH_SUFFIX = "_epoch"
STEP_SUFFIX = "_step"


def epoch_tag(name: str) -> str:
    """``train/loss`` -> ``train/loss_epoch``; a name that already says ``_epoch`` keeps it."""
    return name if name.endswith(EPOCH_SUFFIX) else name + EPOCH_SUFFIX


class EpochTensorBoardLogger(TensorBoardLogger):
    """TensorBoardLogger whose epoch-level metrics are keyed by notebook epoch (see the module docstring).

    Metrics logged with an explicit step and no ``epoch`` (``LearningRateMonitor``, the dashboard) pass through.

    ``flush_secs`` (torch's default is 120) bounds how long closing the writer can wait. The writer
    thread sleeps on its queue until an event arrives or ``flush_secs`` pass; Ctrl-C landing inside
    ``Queue.put``, after the event is queued but before the thread is woken, leaves it asleep, and
    the flush in Lightning's shutdown (and in torch's ``close``) waits for it. With 2 s, the wait is at most 2 s,
    and the event file on disk is never more than 2 s behind.
    """

    def __init__(self, *args: object, flush_secs: int = 2, max_queue: int = 10_000, **kwargs: object) -> None:
        super().__init__(*args, flush_secs=flush_secs, max_queue=max_queue, **kwargs)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if "epoch" not in metrics:  # not an epoch bundle
            super().log_metrics(dict(metrics), step)
            return
        values = {
            epoch_tag(name): value
            for name, value in metrics.items()
            if name not in ("epoch", "step") and not name.endswith(STEP_SUFFIX)
        }
        if values:
            super().log_metrics(values, int(metrics["epoch"]))
