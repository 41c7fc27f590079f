"""A sweep in TensorBoard.

- The sweep's own run holds the grid as a whole: the figure that fits the grid (Images), the distribution of the
  main test figure over members at each snapshot (Histograms and Distributions), its quantiles (Scalars,
  ``grid/*``) and the best members' table (Text).
- Members get runs of their own (``members/<name>``: loss curve and one HParams session, so the HParams table and
  parallel-coordinates views show the grid) up to :data:`MEMBER_RUNS` members; a larger grid writes the
  :data:`commands.sweep_results.TOP_K` best members' runs only, since thousands of runs are neither readable
  in those views nor cheap to write and load. ``results.csv`` holds every member.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.plugins.hparams import api_pb2
from torch.utils.tensorboard import SummaryWriter

from callbacks.tensorboard_hparams import write_session_end, write_session_start
from commands.sweep_figures import GridFigure, readable
from commands.sweep_results import METRIC_NAMES, QUANTILES, TOP_K, final_rows, main_metric, ranked, results_table
from models.tables import markdown_table

CURVE_POINTS = 500  # epochs per member curve at most
MEMBER_RUNS = 100  # members with runs of their own at most; a larger grid writes its TOP_K best members' runs
# The final figures of a member, as HParams metrics: (tag, column name, dataset).
CLASSIFIER_METRICS = [
    ("final/test_f1", "test F1"),
    ("final/test_accuracy", "test accuracy"),
    ("final/test_precision", "test precision"),
    ("final/test_recall", "test recall"),
    ("final/train_loss", "train loss"),
]
REGRESSION_METRICS = [
    ("final/test_mse", "test MSE"),
    ("final/test_loss", "test loss"),
    ("final/train_loss", "train loss"),
]


def hparam_value(value: Any) -> float | str | bool:
    if isinstance(value, (bool, int, float, str)):
        return value
    return "x".join(map(str, value)) if isinstance(value, list) else json.dumps(value)


def members_with_runs(rows: list[dict[str, Any]]) -> set[str]:
    """Every member of a grid of at most MEMBER_RUNS, else the TOP_K best at the last snapshot."""
    final = final_rows(rows)
    shown = final if len(final) <= MEMBER_RUNS else ranked(final)[:TOP_K]
    return {row["member"] for row in shown}


def write_member_runs(
    run_dir: Path, members: list[tuple[str, dict[str, Any], np.ndarray]], final: dict[str, dict[str, Any]]
) -> None:
    """``members``: (name, axis values, loss per epoch) each; ``final``: each member's last results row."""
    classifier = any("test_f1" in row for row in final.values())
    metrics = CLASSIFIER_METRICS if classifier else REGRESSION_METRICS
    infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=name) for tag, name in metrics]
    for name, values, losses in members:
        with SummaryWriter(str(run_dir / "members" / name)) as writer:
            params = {readable(axis): hparam_value(v) for axis, v in values.items()}
            write_session_start(writer, params, infos)
            every = max(1, len(losses) // CURVE_POINTS)
            for epoch in range(every, len(losses) + 1, every):
                writer.add_scalar("train/loss_epoch", float(losses[epoch - 1]), epoch)
            row = final[name]
            for tag, _ in metrics:
                writer.add_scalar(tag, float(row[tag.removeprefix("final/")]), int(row["epoch"]))
            write_session_end(writer, succeeded=not row["diverged"])


def write_grid_run(run_dir: Path, rows: list[dict[str, Any]], figures: list[GridFigure]) -> None:
    """The sweep's own run: the figures, and the main metric over members at each snapshot (histogram, quantiles)
    with the best members' table at the last."""
    metric = main_metric(rows)
    epochs: dict[int, list[float]] = {}
    for row in rows:
        epochs.setdefault(row["epoch"], []).append(float(row[metric]))
    with SummaryWriter(str(run_dir)) as writer:
        for grid_figure in figures:
            writer.add_figure(grid_figure.tag, grid_figure.figure, grid_figure.epoch)
        for epoch, values in sorted(epochs.items()):
            finite = np.array(values)[np.isfinite(values)]
            if not len(finite):
                continue
            writer.add_histogram(f"grid/{metric}", finite, epoch)
            for q, value in zip(QUANTILES, np.quantile(finite, QUANTILES)):
                writer.add_scalar(f"grid/{metric}_q{round(100 * q):03d}", float(value), epoch)
        final = final_rows(rows)
        best = ranked(final)[:TOP_K]
        title = f"The {len(best)} best of {len(final)} members by {METRIC_NAMES[metric]} (every member: results.csv)"
        table = markdown_table(*results_table(best, list(rows[0]["values"])))
        writer.add_text("grid/best_members", f"{title}\n\n{table}", int(final[0]["epoch"]))
