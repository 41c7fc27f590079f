"""Feature normalisation fitted on the training split only, kept as plain lists for checkpoints.

Lightning stores a DataModule's ``state_dict()`` in every checkpoint and hands it back to
``load_state_dict()`` before the test or predict loaders are built, so predict applies exactly
the transform that training used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from datamodules.csv_table import DataError

NormalizeKind = Literal["none", "standardize", "max"]


@dataclass
class Normalizer:
    """``x_normalised = (x - shift) / scale`` per feature column."""

    kind: NormalizeKind
    shift: list[float]
    scale: list[float]

    @classmethod
    def fit(cls, kind: NormalizeKind, x: np.ndarray, names: list[str], source: str) -> Normalizer:
        """``standardize``: mean and population std; ``max``: divide by the column's largest |value|
        (Lab 4 divides by the column maximum; the two agree on non-negative data)."""
        width = x.shape[1]
        if kind == "none":
            return cls(kind, [0.0] * width, [1.0] * width)
        if kind == "standardize":
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked just below, by column
                mean, std = x.mean(axis=0), x.std(axis=0)
            overflowing = [names[j] for j in np.flatnonzero(~np.isfinite(mean) | ~np.isfinite(std))]
            if overflowing:
                peak = float(np.abs(x[:, [names.index(n) for n in overflowing]]).max())
                raise DataError(
                    f"{source}: column(s) {overflowing} hold values up to {peak:.3g}, too large to standardise (their "
                    "mean or standard deviation overflows float64). Rescale the column(s) in the file, e.g. divide "
                    "by a power of 10, or use normalize: max."
                )
            constant = [names[j] for j in np.flatnonzero(std == 0)]
            if constant:
                rank_zero_warn(
                    f"{source}: column(s) {constant} have one value in every training row; they are shifted to 0 and "
                    "left unscaled (not divided by a standard deviation of 0). Drop them if they carry nothing."
                )
            return cls(kind, mean.tolist(), np.where(std > 0, std, 1.0).tolist())
        if kind == "max":
            peak = np.abs(x).max(axis=0)
            zero = [names[j] for j in np.flatnonzero(peak == 0)]
            if zero:
                raise DataError(
                    f"{source}: column(s) {zero} are all 0 in the training data, so 'max' normalisation would "
                    "divide by 0. Drop those columns or use normalize: standardize or none."
                )
            return cls(kind, [0.0] * width, peak.tolist())
        raise DataError(f"normalize must be one of none, standardize, max; got {kind!r}.")

    def apply(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``out=x`` normalises a float64 ``x`` in place: a large table is not copied twice more."""
        return np.divide(np.subtract(x, np.asarray(self.shift), out=out), np.asarray(self.scale), out=out)

    def state(self) -> dict[str, object]:
        return {"kind": self.kind, "shift": list(self.shift), "scale": list(self.scale)}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> Normalizer:
        return cls(state["kind"], list(state["shift"]), list(state["scale"]))  # type: ignore[arg-type]
