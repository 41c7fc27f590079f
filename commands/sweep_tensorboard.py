"""A sweep in TensorBoard: one run per member (``members/<name>``) with its loss curve and one HParams
session, so the HParams table and parallel-coordinates views show the grid, and the heat maps in the
sweep's own run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from tensorboard.plugins.hparams import api_pb2
from torch.utils.tensorboard import SummaryWriter

from callbacks.tensorboard_hparams import write_session_end, write_session_start

CURVE_POINTS = 500  # epochs per member curve at most
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


def readable(axis: str) -> str:
    """``model.init_args.optimizer.init_args.lr`` -> ``lr``; ``...net.hidden_sizes`` -> ``hidden sizes``."""
    return axis.rsplit(".", 1)[-1].replace("_", " ")


def hparam_value(value: Any) -> float | str | bool:
    if isinstance(value, (bool, int, float, str)):
        return value
    return "x".join(map(str, value)) if isinstance(value, list) else json.dumps(value)


def write_member_runs(
    run_dir: Path, members: list[tuple[str, dict[str, Any], np.ndarray]], final_rows: dict[str, dict[str, Any]]
) -> None:
    """``members``: (name, axis values, loss per epoch) each; ``final_rows``: each member's last results row."""
    classifier = any("test_f1" in row for row in final_rows.values())
    metrics = CLASSIFIER_METRICS if classifier else REGRESSION_METRICS
    infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=name) for tag, name in metrics]
    for name, values, losses in members:
        with SummaryWriter(str(run_dir / "members" / name)) as writer:
            params = {readable(axis): hparam_value(v) for axis, v in values.items()}
            write_session_start(writer, params, infos)
            every = max(1, len(losses) // CURVE_POINTS)
            for epoch in range(every, len(losses) + 1, every):
                writer.add_scalar("train/loss_epoch", float(losses[epoch - 1]), epoch)
            row = final_rows[name]
            for tag, _ in metrics:
                writer.add_scalar(tag, float(row[tag.removeprefix("final/")]), int(row["epoch"]))
            write_session_end(writer, succeeded=not row["diverged"])


def write_heat_maps(run_dir: Path, figures: dict[int, Figure]) -> None:
    with SummaryWriter(str(run_dir)) as writer:
        for epoch, figure in figures.items():
            writer.add_figure("sweep/heat_map", figure, epoch)
