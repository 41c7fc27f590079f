"""The plain-text report printed after test: P/R/F1, confusion matrix, predictions per class."""

from __future__ import annotations

import torch
from torch import Tensor

from models.tables import confusion_table

COLLAPSE_WARNING = (
    "WARNING: every test prediction fell in class {cls}. Precision and recall of the other "
    "class(es) are undefined (no predictions, or no true positives), so they count as 0 and the "
    "macro precision and F1 collapse towards 1/K of their value. This usually means training "
    "stalled near the initial weights. {advice}"
)
# What to try, in general terms; the CLI replaces it with the run's own config files and values.
GENERAL_ADVICE = "Try: more epochs, another learning rate, wider hidden layers, or other seeds."


def predictions_per_class(confusion: Tensor) -> list[int]:
    """Column sums of the confusion matrix (rows = true class, columns = predicted class)."""
    return [int(v) for v in confusion.sum(0).tolist()]


def collapsed_class(confusion: Tensor) -> int | None:
    """The single predicted class when every prediction fell in it, else None."""
    counts = confusion.sum(0)
    nonzero = torch.nonzero(counts).flatten().tolist()
    return nonzero[0] if len(nonzero) == 1 else None


def format_test_report(
    model_name: str, precision: float, recall: float, f1: float, confusion: Tensor, advice: str = GENERAL_ADVICE
) -> str:
    k = confusion.shape[0]
    counts = {j: c for j, c in enumerate(predictions_per_class(confusion))}
    lines = [
        f"Test metrics for {model_name} (macro average over classes):",
        f"  precision: {precision:.4f}",
        f"  recall   : {recall:.4f}",
        f"  f1       : {f1:.4f}",
        "Confusion matrix (rows: true class, columns: predicted class):",
        confusion_table(confusion),
        f"Predicted class counts: {counts}",
    ]
    cls = collapsed_class(confusion)
    if cls is not None and k > 1:
        lines.append(COLLAPSE_WARNING.format(cls=cls, advice=advice))
    return "\n".join(lines)
