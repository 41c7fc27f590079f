"""The project's one table writer, in markdown (for .md files and TensorBoard text) and aligned plain text
(for the terminal), so every report lays out its rows the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def cell(value: object, digits: int = 6) -> str:
    """Floats with ``digits`` decimals, None as an empty cell, anything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 6) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def plain_table(header: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 6) -> str:
    """Columns padded to their widest cell: the first (row names) left-aligned, the numbers right-aligned."""
    texts = [list(header)] + [[cell(v, digits) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in texts) for i in range(len(header))]
    lines = ["  ".join(aligned(i, text, width) for i, (text, width) in enumerate(zip(row, widths))) for row in texts]
    return "\n".join(line.rstrip() for line in lines)


def aligned(column: int, text: str, width: int) -> str:
    return text.ljust(width) if column == 0 else text.rjust(width)


def confusion_table(confusion: np.ndarray | torch.Tensor) -> str:
    """A K x K confusion matrix as a plain table: rows ``true i``, columns ``pred j``, integer counts."""
    counts = torch.as_tensor(confusion).cpu().numpy().astype(np.int64)
    k = counts.shape[0]
    return plain_table(["", *(f"pred {j}" for j in range(k))], [[f"true {i}", *counts[i].tolist()] for i in range(k)])
