"""When training has diverged, for single runs and every member of a sweep alike.

A run diverges when a loss or weight stops being finite, when an epoch's mean training loss grows past
``loss_growth`` times the initial loss (the loss of the initial weights on the first training rows, measured before
the first update: a first epoch that already blew up is no reference), or when a weight grows past
``max_abs_weight`` in magnitude. The last two
catch a blow-up while it is still finite: a learning rate of 1e6 takes a sigmoid net's loss from 0.69 to 2e6, and a
ReLU net's weights to 1e31, without a single NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_ROWS = 1024  # the initial loss is measured on at most this many training rows
ADVICE = "Lower model.init_args.optimizer.init_args.lr, normalise the features (data.normalize), or clip the gradients"


class DivergenceError(ValueError):
    """Training diverged: a setting to change, not a bug.

    ``update`` and ``epoch`` (1-based) say where, so ``compare`` can tell whether both modules diverged at the
    same update (defaults keep the error picklable from its message alone)."""

    def __init__(self, message: str, update: int | None = None, epoch: int | None = None) -> None:
        super().__init__(message)
        self.update, self.epoch = update, epoch


@dataclass(frozen=True)
class DivergenceRule:
    """``model.init_args.divergence_loss_growth`` and ``model.init_args.divergence_max_weight``; 0 turns a
    check off (finiteness is always checked)."""

    loss_growth: float = 1e3
    max_abs_weight: float = 1e6

    def __post_init__(self) -> None:
        if self.loss_growth < 0 or self.max_abs_weight < 0:
            raise ValueError(
                "model.init_args.divergence_loss_growth and divergence_max_weight must be >= 0 (0 turns the check "
                f"off), got {self.loss_growth} and {self.max_abs_weight}"
            )

    def grown(self, epoch_losses: np.ndarray, initial_loss: float | np.ndarray) -> np.ndarray:
        """Which epoch losses grew past the bound: same shape as ``epoch_losses`` (reference broadcast)."""
        if not self.loss_growth:
            return np.zeros(np.shape(epoch_losses), dtype=bool)
        with np.errstate(invalid="ignore"):
            return np.asarray(epoch_losses) > self.loss_growth * np.abs(initial_loss)

    def describe_growth(self, loss: float, initial_loss: float) -> str:
        return (
            f"its mean loss grew to {loss:.4g}, more than {self.loss_growth:g} times its initial {initial_loss:.4g} "
            "(model.init_args.divergence_loss_growth)"
        )

    def describe_weight(self, largest: float) -> str:
        return (
            f"a weight grew to {largest:.4g} in magnitude, past {self.max_abs_weight:g} "
            "(model.init_args.divergence_max_weight)"
        )
