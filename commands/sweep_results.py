"""A sweep's results as people read them: one table row per member and snapshot, and heat maps of the
main test figure over the first two axes."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from callbacks.figures import new_figure
from models.tables import markdown_table

CLASSIFICATION_COLUMNS = ["test_accuracy", "test_precision", "test_recall", "test_f1"]


def results_table(rows: list[dict[str, Any]], axes: list[str]) -> tuple[list[str], list[list[str]]]:
    """One row per member and snapshot: its axis values, losses and test figures, and flags."""
    classifier = bool(rows) and "test_f1" in rows[0]
    figures = ["train_loss", "test_loss", *(CLASSIFICATION_COLUMNS if classifier else ["test_mse"])]
    flags = ["collapsed", "diverged"] if classifier else ["diverged"]
    columns = ["member", *(a.rsplit(".", 1)[-1] for a in axes), "epoch", *figures, *flags]
    body = []
    for row in rows:
        values = [row["member"], *(json.dumps(row["values"][a]) for a in axes), str(row["epoch"])]
        values += [f"{row[k]:.6g}" for k in figures] + ["yes" if row[k] else "no" for k in flags]
        body.append(values)
    return columns, body


def main_metric(rows: list[dict[str, Any]]) -> str:
    return "test_f1" if rows and "test_f1" in rows[0] else "test_mse"


def heat_map(rows: list[dict[str, Any]], axes: list[str], epoch: int, path: Path) -> Figure:
    """Mean test F1 (or test MSE for regression), over the other axes, on a grid of the first two axes."""
    metric = main_metric(rows)
    first, second = axes[0], axes[1] if len(axes) > 1 else None
    xs = list(dict.fromkeys(json.dumps(r["values"][first]) for r in rows))
    ys = list(dict.fromkeys(json.dumps(r["values"][second]) for r in rows)) if second else [""]
    grid = np.full((len(ys), len(xs)), np.nan)
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            f1 = [
                r[metric]
                for r in rows
                if r["epoch"] == epoch
                and json.dumps(r["values"][first]) == x
                and (not second or json.dumps(r["values"][second]) == y)
            ]
            grid[j, i] = np.mean(f1) if f1 else np.nan
    figure = new_figure(1.2 * len(xs) + 2.5, 0.8 * len(ys) + 2.0)
    ax = figure.add_subplot(1, 1, 1)
    limits = {"vmin": 0, "vmax": 1} if metric == "test_f1" else {}
    image = ax.imshow(grid, cmap="viridis", origin="lower", **limits)
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(first)
    ax.set_ylabel(second or "")
    for (j, i), value in np.ndenumerate(grid):
        ax.text(i, j, f"{value:.3g}", ha="center", va="center", color="w")
    ax.set_title(f"{'test macro F1' if metric == 'test_f1' else 'test MSE'} at epoch {epoch}")
    figure.colorbar(image)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return figure


def write_results(run_dir: Path, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], list[Path], dict]:
    """``results.csv`` and ``results.md``, and one heat-map PNG per snapshot, in ``run_dir``.
    Returns the table (columns, body), the PNG paths and the figures by epoch."""
    axes = list(rows[0]["values"]) if rows else []
    columns, body = results_table(rows, axes)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.md").write_text(markdown_table(columns, body) + "\n")
    with open(run_dir / "results.csv", "w", newline="") as f:
        csv.writer(f).writerows([columns, *body])  # quoted where a value holds a comma, e.g. [3, 3]
    paths, drawn = [], {}
    for epoch in sorted({r["epoch"] for r in rows}):
        path = run_dir / f"{main_metric(rows)}_heat_map_epoch{epoch}.png"
        drawn[epoch] = heat_map(rows, axes, epoch, path)
        paths.append(path)
    return columns, body, paths, drawn
