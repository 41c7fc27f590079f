"""A sweep's results as tables: every member and snapshot in ``results.csv``; what a person reads (the terminal and
``results.md``) is the final snapshot, and for a grid of more than :data:`TABLE_MEMBERS` members a summary (best,
quantiles, counts of flagged members) and the :data:`TOP_K` best members."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from models.tables import markdown_table, plain_table

CLASSIFICATION_COLUMNS = ["test_accuracy", "test_precision", "test_recall", "test_f1"]
TABLE_MEMBERS = 50  # up to this many members a table lists every one: one screen, and still scanned by eye
TOP_K = 10  # the best members a larger grid lists
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
METRIC_NAMES = {"test_f1": "test macro F1", "test_mse": "test MSE"}


def main_metric(rows: list[dict[str, Any]]) -> str:
    """test_f1 for classifiers (higher is better), test_mse for regression (lower is better)."""
    return "test_f1" if rows and "test_f1" in rows[0] else "test_mse"


def final_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each member's last row, in member order (rows come in epoch order: the last one wins)."""
    return list({row["member"]: row for row in rows}.values())


def ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first by the main metric; diverged members and non-finite figures last."""
    metric = main_metric(rows)
    sign = -1.0 if metric == "test_f1" else 1.0

    def key(row: dict[str, Any]) -> tuple[bool, float]:
        value = float(row[metric])
        return row["diverged"] or not np.isfinite(value), sign * value if np.isfinite(value) else 0.0

    return sorted(rows, key=key)


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


def summary_lines(final: list[dict[str, Any]]) -> list[str]:
    """How many members, the best one, the quantiles of the main metric over members, and the flagged counts."""
    metric = main_metric(final)
    values = np.array([row[metric] for row in final], dtype=float)
    finite = values[np.isfinite(values)]
    best = ranked(final)[0]
    lines = [
        f"{len(final)} members at epoch {final[0]['epoch']}; {METRIC_NAMES[metric]}: best {best[metric]:.4g} "
        f"({best['member']})"
    ]
    if len(finite):
        quantiles = np.quantile(finite, QUANTILES)
        labels = "/".join(f"{q:.0%}" for q in QUANTILES)
        lines.append(f"quantiles {labels} over members: " + ", ".join(f"{q:.4g}" for q in quantiles))
    flagged = [f"{sum(bool(row[flag]) for row in final)} {flag}" for flag in ("diverged", "collapsed") if flag in best]
    lines.append(", ".join(flagged))
    return lines


def readable_results(rows: list[dict[str, Any]], axes: list[str], markdown: bool) -> str:
    """The final snapshot of every member, or for a large grid the summary and the best :data:`TOP_K`; each says
    which rows it leaves out and that ``results.csv`` holds them."""
    table = markdown_table if markdown else plain_table
    final = final_rows(rows)
    snapshots = sorted({row["epoch"] for row in rows})
    earlier = len(rows) - len(final)
    if len(final) <= TABLE_MEMBERS:
        text = [table(*results_table(final, axes))]
        if earlier:
            text.append(f"Epoch {snapshots[-1]} shown; the {earlier} rows of epochs {snapshots[:-1]}: results.csv")
        return "\n\n".join(text) if markdown else "\n".join(text)
    best = ranked(final)[:TOP_K]
    text = [
        *summary_lines(final),
        f"The {len(best)} best by {METRIC_NAMES[main_metric(final)]}:",
        table(*results_table(best, axes)),
        f"{len(rows) - len(best)} more rows ({len(final) - len(best)} members, snapshots {snapshots}): results.csv",
    ]
    return "\n\n".join(text) if markdown else "\n".join(text)


def write_results(run_dir: Path, rows: list[dict[str, Any]]) -> str:
    """``results.csv`` (every row) and ``results.md`` (what :func:`readable_results` shows) in ``run_dir``; returns
    the terminal's text."""
    axes = list(rows[0]["values"]) if rows else []
    run_dir.mkdir(parents=True, exist_ok=True)
    columns, body = results_table(rows, axes)
    with open(run_dir / "results.csv", "w", newline="") as f:
        csv.writer(f).writerows([columns, *body])  # quoted where a value holds a comma, e.g. [3, 3]
    (run_dir / "results.md").write_text(readable_results(rows, axes, markdown=True) + "\n")
    return readable_results(rows, axes, markdown=False)
