"""The figure that fits a sweep's grid, of its main test figure (test macro F1, or test MSE for regression).

The axes that vary decide, ``seed`` aside: seeds are repeats, averaged over, with their spread drawn as a band
(as are any axes beyond the ones drawn).

- No such axis (one config, or seeds alone): the metric's distribution over members, with its quantiles.
- One: the metric against its values, a line per snapshot, log-scaled where the values span
  :data:`LOG_SPAN` or more; categories (activations, optimisers) as points with their spread.
- Two or more: a heat map over the first two, one per snapshot, while each has at most :data:`HEAT_MAP_VALUES`
  values (the cells' text stays readable); past that, a line per value of one axis (at most :data:`LINE_GROUPS`)
  against the other, numeric one, at the last snapshot; past that, the distribution.

Every figure is small whatever the grid's size: its cost grows with the rows, never with drawn cells or labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from callbacks.figures import new_figure
from commands.sweep_results import METRIC_NAMES, QUANTILES, main_metric

HEAT_MAP_VALUES = 20  # values per heat-map axis: 400 cells at most, each still wide enough for its number
LINE_GROUPS = 10  # lines one figure tells apart by colour
LOG_SPAN = 100.0  # largest / smallest positive value from which an axis is log-scaled: two decades
MARKERS_UP_TO = 30  # points per line drawn as markers too
HISTOGRAM_SNAPSHOTS = 4  # the last snapshots a distribution overlays


@dataclass
class GridFigure:
    name: str  # the PNG's stem in the run directory
    tag: str  # TensorBoard image tag
    epoch: int  # TensorBoard step: the snapshot it shows (the last, for figures over every snapshot)
    figure: Figure


def readable(axis: str) -> str:
    """``model.init_args.optimizer.init_args.lr`` -> ``lr``; ``...net.hidden_sizes`` -> ``hidden sizes``;
    ``model.init_args.optimizer.class_path`` -> ``optimizer``."""
    parts = axis.split(".")
    leaf = parts[-2] if parts[-1] == "class_path" and len(parts) > 1 else parts[-1]
    return leaf.replace("_", " ")


def value_label(value: Any) -> str:
    """0.001 -> ``0.001``, [3, 3] -> ``3x3``, ``torch.optim.Adam`` -> ``Adam``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(map(str, value))
    return str(value).rsplit(".", 1)[-1] if isinstance(value, str) else str(value)


def is_numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def log_scaled(values: np.ndarray) -> bool:
    return bool(np.all(values > 0) and values.max() >= LOG_SPAN * values.min())


def distinct(rows: list[dict[str, Any]], axis: str) -> list[Any]:
    """The axis's values in grid order (the first row of each)."""
    return list({json.dumps(row["values"][axis]): row["values"][axis] for row in rows}.values())


def aggregate(
    rows: list[dict[str, Any]], axes: list[str], metric: str
) -> tuple[list[list[Any]], np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of each axis and, per combination of them, the mean, least and largest finite metric over
    the rows (the other axes and seeds): arrays of shape ``(len(values of axis 0), len(values of axis 1), ...)``."""
    values = [distinct(rows, axis) for axis in axes]
    positions = [{json.dumps(v): i for i, v in enumerate(vs)} for vs in values]
    shape = tuple(len(vs) for vs in values)
    codes = [
        np.fromiter((p[json.dumps(r["values"][a])] for r in rows), np.int64, len(rows)) for a, p in zip(axes, positions)
    ]
    cell = np.ravel_multi_index(codes, shape) if codes else np.zeros(len(rows), np.int64)
    metric_values = np.fromiter((r[metric] for r in rows), float, len(rows))
    finite = np.isfinite(metric_values)
    cell, metric_values = cell[finite], metric_values[finite]
    size = int(np.prod(shape))
    counts = np.bincount(cell, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(cell, metric_values, minlength=size) / counts
    low, high = np.full(size, np.inf), np.full(size, -np.inf)
    np.minimum.at(low, cell, metric_values)
    np.maximum.at(high, cell, metric_values)
    low[counts == 0], high[counts == 0] = np.nan, np.nan
    return values, mean.reshape(shape), low.reshape(shape), high.reshape(shape)


def by_epoch(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    epochs: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        epochs.setdefault(row["epoch"], []).append(row)
    return dict(sorted(epochs.items()))


def against_values(rows: list[dict[str, Any]], axis: str, metric: str, group: str | None = None) -> Figure:
    """The metric against one axis's values: a line (points for categories) per snapshot, or with ``group`` a line
    per value of that axis at the last snapshot; the band spans the members each point averages."""
    figure = new_figure()
    ax = figure.add_subplot()
    epochs = by_epoch(rows)
    last = max(epochs)
    if group is None:
        series = [(f"epoch {epoch}", epoch_rows) for epoch, epoch_rows in epochs.items()]
    else:
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in epochs[last]:
            groups.setdefault(f"{readable(group)} {value_label(row['values'][group])}", []).append(row)
        series = list(groups.items())
    numeric = is_numeric(distinct(rows, axis))
    spread = False
    for i, (label, series_rows) in enumerate(series):
        (values,), mean, low, high = aggregate(series_rows, [axis], metric)
        banded = bool(np.any(high > low))  # several members per point: the other axes' or seeds'
        spread |= banded
        if numeric:
            x = np.array(values, dtype=float)
            order = np.argsort(x)
            marker = "o" if len(x) <= MARKERS_UP_TO else None
            ax.plot(x[order], mean[order], marker=marker, color=f"C{i % 10}", label=label)
            if banded:
                ax.fill_between(x[order], low[order], high[order], color=f"C{i % 10}", alpha=0.2, linewidth=0)
        else:
            x = np.arange(len(values)) + 0.1 * (i - (len(series) - 1) / 2)  # side by side, not on top
            error = np.vstack([mean - low, high - mean])
            ax.errorbar(x, mean, yerr=error, fmt="o", capsize=3, color=f"C{i % 10}", label=label)
            every = max(1, len(values) // HEAT_MAP_VALUES)
            ax.set_xticks(range(0, len(values), every), [value_label(v) for v in values[::every]])
    if numeric and log_scaled(np.array(distinct(rows, axis), dtype=float)):
        ax.set_xscale("log")
    ax.set_xlabel(readable(axis))
    ax.set_ylabel(METRIC_NAMES[metric])
    mark = "band" if numeric else "bars"
    averaged = f"mean over the other axes and seeds; {mark}: their least to largest" if spread else ""
    at = f" at epoch {last}" if group is not None or len(epochs) == 1 else ""
    ax.set_title(f"{METRIC_NAMES[metric]}{at}" + (f"\n({averaged})" if averaged else ""), fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return figure


def heat_map(rows: list[dict[str, Any]], axes: list[str], metric: str, epoch: int) -> Figure:
    """The metric over the first two axes, averaged over the rest; the colour scale spans the cells shown, and each
    cell's text is black or white, whichever stands out from its colour."""
    (xs, ys), mean, _, _ = aggregate(rows, axes[:2], metric)
    grid = mean.T  # rows of the image: the second axis
    figure = new_figure(0.9 * len(xs) + 2.5, 0.6 * len(ys) + 2.0)
    ax = figure.add_subplot(1, 1, 1)
    finite = grid[np.isfinite(grid)]
    limits = {"vmin": finite.min(), "vmax": finite.max()} if len(finite) else {}
    image = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto", **limits)
    ax.set_xticks(range(len(xs)), [value_label(x) for x in xs])
    ax.set_yticks(range(len(ys)), [value_label(y) for y in ys])
    ax.set_xlabel(readable(axes[0]))
    ax.set_ylabel(readable(axes[1]))
    for (j, i), value in np.ndenumerate(grid):
        red, green, blue, _ = image.cmap(image.norm(value))
        luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue  # Rec. 709 weights: how light the cell looks
        ax.text(i, j, f"{value:.3g}", ha="center", va="center", color="black" if luminance > 0.5 else "white")
    rest = " (mean over the other axes and seeds)" if len(rows) > grid.size else ""
    ax.set_title(f"{METRIC_NAMES[metric]} at epoch {epoch}{rest}", fontsize=10)
    figure.colorbar(image)
    return figure


def distribution(rows: list[dict[str, Any]], metric: str) -> Figure:
    """Histograms of the metric over members at the last snapshots, the final quantiles dotted."""
    figure = new_figure()
    ax = figure.add_subplot()
    epochs = by_epoch(rows)
    shown = list(epochs)[-HISTOGRAM_SNAPSHOTS:]
    last = np.array([row[metric] for row in epochs[shown[-1]]], dtype=float)
    bins = int(np.clip(np.sqrt(len(last)), 10, 50))
    for epoch in shown:
        values = np.array([row[metric] for row in epochs[epoch]], dtype=float)
        ax.hist(values[np.isfinite(values)], bins=bins, histtype="step", label=f"epoch {epoch}")
    finite = last[np.isfinite(last)]
    for q in np.quantile(finite, QUANTILES) if len(finite) else []:
        ax.axvline(q, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(METRIC_NAMES[metric])
    ax.set_ylabel("members")
    quantiles = "/".join(f"{q:.0%}" for q in QUANTILES)
    ax.set_title(f"{METRIC_NAMES[metric]} over {len(last)} members (dotted: quantiles {quantiles})", fontsize=10)
    if len(shown) > 1:
        ax.legend(fontsize=8)
    return figure


def grid_figures(rows: list[dict[str, Any]]) -> list[GridFigure]:
    """The figures that fit the grid (see the module docstring); none for a single member."""
    if len({row["member"] for row in rows}) < 2:
        return []
    metric = main_metric(rows)
    last = max(row["epoch"] for row in rows)
    varying = [axis for axis in rows[0]["values"] if axis != "seed" and len(distinct(rows, axis)) > 1]
    counts = [len(distinct(rows, axis)) for axis in varying]
    if len(varying) == 1:
        name = f"{metric}_by_{readable(varying[0]).replace(' ', '_')}"
        return [GridFigure(name, f"sweep/{metric}_by_value", last, against_values(rows, varying[0], metric))]
    if len(varying) >= 2 and max(counts[:2]) <= HEAT_MAP_VALUES:
        return [
            GridFigure(f"{metric}_heat_map_epoch{e}", "sweep/heat_map", e, heat_map(epoch_rows, varying, metric, e))
            for e, epoch_rows in by_epoch(rows).items()
        ]
    if len(varying) >= 2:
        first, second = varying[:2]
        for axis, group in ((first, second), (second, first)):
            if is_numeric(distinct(rows, axis)) and len(distinct(rows, group)) <= LINE_GROUPS:
                name = f"{metric}_by_{readable(axis).replace(' ', '_')}_per_{readable(group).replace(' ', '_')}"
                figure = against_values(rows, axis, metric, group)
                return [GridFigure(name, f"sweep/{metric}_by_value", last, figure)]
    return [GridFigure(f"{metric}_distribution", "sweep/distribution", last, distribution(rows, metric))]
