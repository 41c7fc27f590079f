"""Matplotlib figures for TensorBoard: loss curves, confusion matrix, decision boundary.

Figures are built with ``matplotlib.figure.Figure`` and rendered by the Agg canvas, never through
pyplot's global state, so they work headless and in worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CLASS_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


# Fixed margins (left, bottom, right, top) for one axes with a title and axis labels: constrained layout
# measures every text, which costs more than drawing these small figures.
ONE_AXES_MARGINS = (0.11, 0.11, 0.97, 0.92)


def new_figure(
    width: float = 6.4, height: float = 4.4, margins: tuple[float, float, float, float] | None = None
) -> Figure:
    """A figure on its own Agg canvas, outside pyplot's global state; the one factory of every plot here.
    Laid out by matplotlib's constrained layout unless fixed ``margins`` are given."""
    figure = Figure(figsize=(width, height), dpi=100, layout=None if margins else "constrained")
    if margins:
        left, bottom, right, top = margins
        figure.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
    FigureCanvasAgg(figure)
    return figure


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` steps (shorter at the start), so noisy per-step losses show a trend."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


PLOT_POINTS = 1000  # a 6.4-inch plot at 100 dpi has ~500 pixel columns: more points only cost time


def envelope(values: np.ndarray, bins: int = PLOT_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(step, min, max)`` of the values in each of ``bins`` runs of consecutive steps: the faint band of
    raw losses, which draws 12,000 noisy steps in a tenth of the time of the line through them."""
    if len(values) <= bins:
        return np.arange(len(values)), values, values
    edges = np.linspace(0, len(values), bins + 1).astype(int)
    return edges[:-1], np.minimum.reduceat(values, edges[:-1]), np.maximum.reduceat(values, edges[:-1])


def thinned(values: np.ndarray, points: int = PLOT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th point of a smooth curve (and the last), at most about ``points`` of them."""
    stride = max(len(values) // points, 1)
    steps = np.unique(np.append(np.arange(0, len(values), stride), len(values) - 1)) if len(values) else np.arange(0)
    return steps, values[steps]


def _draw_losses(ax: object, curves: Mapping[str, Sequence[float]], steps_per_epoch: int | None) -> None:
    """Raw per-step losses, faint, and their moving average over one epoch, bold; later runs dashed."""
    for i, (name, losses) in enumerate(curves.items()):
        values = np.asarray(losses, dtype=np.float64)
        colour = CLASS_COLOURS[i % len(CLASS_COLOURS)]
        window = steps_per_epoch or max(len(values) // 50, 1)
        style = "-" if i == 0 else "--"
        steps, low, high = envelope(values)
        ax.fill_between(steps, low, high, color=colour, alpha=0.25, linewidth=0.6, step="mid")
        average = moving_average(values, window)
        label = f"{name} (mean of last {window})"
        ax.plot(*thinned(average), style, color=colour, linewidth=2.4 - 0.6 * i, label=label)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")


def loss_curve_figure(
    curves: Mapping[str, Sequence[float]], steps_per_epoch: int | None = None, title: str = "Training loss per step"
) -> Figure:
    """One line per run, so several runs overlay in one plot."""
    figure = new_figure(margins=ONE_AXES_MARGINS)
    ax = figure.add_subplot()
    _draw_losses(ax, curves, steps_per_epoch)
    ax.set_title(title)
    ax.set_xlabel("optimizer step")
    return figure


def loss_comparison_figure(
    curves: Mapping[str, Sequence[float]], steps_per_epoch: int | None = None, title: str = "Training loss per step"
) -> Figure:
    """Two runs overlaid on top, and below, their per-step |difference| on a log scale: identical
    curves hide each other, the difference shows how close they are."""
    (name_a, a), (name_b, b) = [(k, np.asarray(v, dtype=np.float64)) for k, v in curves.items()]
    n = min(len(a), len(b))
    difference = np.abs(a[:n] - b[:n])
    figure = new_figure(6.4, 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    _draw_losses(top, curves, steps_per_epoch)
    top.set_title(title)
    nonzero = difference > 0
    bottom.semilogy(np.flatnonzero(nonzero), difference[nonzero], ".", markersize=2, color="tab:red")
    bottom.set_title(
        f"|{name_a.split(' (')[0]} - {name_b.split(' (')[0]}| per step: max {difference.max(initial=0.0):.2e}; "
        f"equal at {int((~nonzero).sum())} of {n} steps",
        fontsize=9,
    )
    bottom.set_xlabel("optimizer step")
    bottom.set_ylabel("|loss difference|")
    bottom.grid(alpha=0.3)
    return figure


def confusion_matrix_figure(confusion: np.ndarray, title: str = "Confusion matrix") -> Figure:
    """Counts with row-normalised shading (rows: true class), so both large and small classes read well."""
    confusion = np.asarray(confusion)
    k = confusion.shape[0]
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    size = 2.8 + 0.5 * k
    figure = new_figure(size + 1.0, size)
    ax = figure.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            colour = "white" if rates[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(confusion[i, j])}", ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    figure.colorbar(image, ax=ax, label="fraction of the true class")
    return figure


def decision_boundary_figure(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    title: str = "Decision boundary",
    resolution: int = 200,
) -> Figure:
    """Predicted class regions over the data's bounding box, shaded by confidence, with the points on top.

    ``predict_proba`` maps (M, 2) inputs to (M, K) class probabilities.
    """
    pad_x, pad_y = 0.1 * np.ptp(x, axis=0) + 1e-3
    xs = np.linspace(x[:, 0].min() - pad_x, x[:, 0].max() + pad_x, resolution)
    ys = np.linspace(x[:, 1].min() - pad_y, x[:, 1].max() + pad_y, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    probs = predict_proba(np.column_stack([grid_x.ravel(), grid_y.ravel()]))
    regions = probs.argmax(1).reshape(grid_x.shape)
    confidence = probs.max(1).reshape(grid_x.shape)
    k = probs.shape[1]
    figure = new_figure(margins=ONE_AXES_MARGINS)
    ax = figure.add_subplot()
    for c in range(k):
        mask = np.where(regions == c, confidence, np.nan)
        ax.contourf(grid_x, grid_y, mask, levels=[0.0, 0.6, 0.8, 1.0], colors=[CLASS_COLOURS[c % 8]], alpha=0.18)
    if k > 1:
        ax.contour(grid_x, grid_y, regions, levels=np.arange(k - 1) + 0.5, colors="black", linewidths=1.2)
    for c in np.unique(y).astype(int):
        points = x[y == c]
        colour = CLASS_COLOURS[c % 8]
        ax.scatter(points[:, 0], points[:, 1], s=12, color=colour, edgecolors="white", linewidths=0.3, label=f"{c}")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend(title="true class", loc="best")
    return figure
