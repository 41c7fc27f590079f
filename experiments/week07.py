"""Week 7 (notebook 001): moons baseline with gradient check, the initialisation comparison, the exercises.

The initialisation comparison is one `train.py sweep` (configs/sweeps/week07_inits.yaml): the three
weight scales x three seeds train stacked, each member's per-epoch loss read from the sweep. The
baseline and the exercises (other depths, activations, batch sizes, L2: no common grid) stay single
fits, which also give the decision-boundary figures.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from matplotlib.figure import Figure

from callbacks.figures import decision_boundary_figure, new_figure
from callbacks.gradient_check import check_gradients
from commands.sweep import SweepResult, run_sweep
from experiments.report import Report
from experiments.runner import ROOT, RunResult, run
from models.layers.heads import output_activation
from models.manual_net import ManualMLP
from models.tables import markdown_table
from train import make_cli

# The notebook's stds: small 0.01, "xavier" sqrt(2 / (fan_in + fan_out)) = sqrt(2 / 12) for both layers,
# "he" sqrt(2 / fan_in) = 1 for both layers (it uses the input layer's sizes throughout).
INITS = {"small": 0.01, "xavier": math.sqrt(2.0 / 12), "he": 1.0}
CONFIG = ROOT / "configs" / "experiments" / "week07_moons.yaml"
INIT_SWEEP = ROOT / "configs" / "sweeps" / "week07_inits.yaml"  # INITS' stds x seeds 0, 1, 2
STD_AXIS = "model.init_args.net.init_std"
EXERCISES = {
    "baseline 2-10-2 ReLU": [],
    "3 hidden layers 10-10-10 (He init)": [
        "--model.init_args.net.hidden_sizes=[10,10,10]",
        "--model.init_args.net.init=he_normal",
    ],
    "tanh": ["--model.init_args.net.activation=tanh"],
    "leaky ReLU (0.01)": ["--model.init_args.net.activation=leaky_relu"],
    "mini-batches of 32 (shuffled)": ["--data.init_args.batch_size=32", "--model.init_args.optimizer.init_args.lr=0.1"],
    "L2 1e-3 (hand-derived gradient)": ["--model.init_args.net.l2=0.001"],
}


def boundary_image(report: Report, result: RunResult, name: str, title: str) -> str:
    module = result.module
    x, y = result.datamodule.tensors("train")

    def proba(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = module.net(torch.from_numpy(points).to(module.dtype))
            return output_activation(module.spec.head, z).numpy()

    figure = decision_boundary_figure(proba, x.numpy(), y.numpy(), title=title)
    return report.figure(figure, name, title)


def init_name(std: float) -> str:
    """The notebook's name of an init std (the sweep file gives sqrt(2 / 12) to six decimals)."""
    return next((name for name, s in INITS.items() if math.isclose(s, std, rel_tol=1e-5)), f"std {std:g}")


def init_sweep_file(quick: bool, work_dir: Path) -> Path:
    """The shipped init grid; for --quick (a tenth of the epochs) a copy in ``work_dir`` whose snapshots
    are scaled alike, so the table keeps its two reading points."""
    if not quick:
        return INIT_SWEEP
    content = yaml.safe_load(INIT_SWEEP.read_text())
    content["snapshots"] = [max(1, e // 10) for e in content.get("snapshots", [])]
    path = work_dir / INIT_SWEEP.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def init_table(result: SweepResult) -> list[list[object]]:
    """One row per std and snapshot: test accuracy of each seed, train loss mean (min-max), flags."""
    groups: dict[tuple[float, int], list[dict]] = {}
    for row in result.rows:
        groups.setdefault((row["values"][STD_AXIS], row["epoch"]), []).append(row)
    table = []
    for (std, epoch), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r["values"]["seed"])
        losses = [r["train_loss"] for r in rows]
        flags = [
            f"{sum(r[k] for r in rows)}/{len(rows)} {k}" for k in ("collapsed", "diverged") if any(r[k] for r in rows)
        ]
        table.append(
            [
                init_name(std),
                f"{std:.4f}",
                epoch,
                " / ".join(f"{r['test_accuracy']:.4f}" for r in rows),
                f"{np.mean(losses):.4g} ({min(losses):.4g}-{max(losses):.4g})",
                ", ".join(flags) or "no",
            ]
        )
    return table


def init_figure(result: SweepResult) -> Figure:
    """Per std, the seeds' training loss per epoch: the mean as a line, min to max as a band; log scale."""
    curves: dict[float, list[np.ndarray]] = {}
    for _, values, losses in result.member_curves():
        curves.setdefault(values[STD_AXIS], []).append(losses)
    figure = new_figure()
    ax = figure.add_subplot()
    for std, losses in sorted(curves.items()):
        stacked = np.stack(losses)
        epochs = np.arange(1, stacked.shape[1] + 1)
        (line,) = ax.plot(epochs, stacked.mean(axis=0), linewidth=2, label=f"{init_name(std)} (std {std:.3g})")
        ax.fill_between(epochs, stacked.min(axis=0), stacked.max(axis=0), color=line.get_color(), alpha=0.25, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch (one full-batch update each)")
    ax.set_ylabel("training loss before the epoch's update")
    seeds = len(next(iter(curves.values()))) if curves else 0
    ax.set_title(f"moons: initialisation comparison ({seeds} seeds: mean, min-max band)")
    ax.legend()
    return figure


def main(report: Report, quick: bool, work_dir: Path) -> None:
    epochs = 100 if quick else 1000
    base = run("week07_moons", [f"--trainer.max_epochs={epochs}"], quiet=False)
    gradient_rows = [[name, f"{err:.2e}"] for name, err in gradient_errors(base).items()]
    base_rows = [[base.last["train/accuracy"], base.last["test/accuracy"], base.last["train/loss"], base.seconds]]
    images = [boundary_image(report, base, "week07_boundary_baseline", "moons 2-10-2 ReLU, full batch lr 0.5")]

    init_epochs = 50 if quick else 500
    start = time.perf_counter()
    inits = run_sweep(
        make_cli,
        ["--config", str(CONFIG), f"--trainer.max_epochs={init_epochs}", "--trainer.enable_progress_bar=false"],
        str(init_sweep_file(quick, work_dir)),
        save_dir=str(work_dir / "runs"),
    )
    init_seconds = time.perf_counter() - start
    init_rows = init_table(inits)
    seeds = " / ".join(str(s) for s in sorted({r["values"]["seed"] for r in inits.rows}))
    init_image = report.figure(init_figure(inits), "week07_init_losses", "initialisation comparison, log-scale loss")

    exercise_rows = []
    for i, (name, overrides) in enumerate(EXERCISES.items()):
        r = run("week07_moons", [*overrides, f"--trainer.max_epochs={epochs}", "--trainer.callbacks=[]"])
        exercise_rows.append([name, r.last["train/accuracy"], r.last["test/accuracy"], r.last["train/loss"]])
        if i:
            images.append(boundary_image(report, r, f"week07_boundary_{i}", name))
    report.add(
        "## Week 7 (notebook 001)",
        f"make_moons(300, noise 0.2, random_state 42), 70/30 split; 2-10-2 ReLU with bias, softmax cross-entropy, "
        f"weights N(0, 0.1), full-batch gradient descent lr 0.5, {epochs} epochs. Command: "
        "`python train.py fit --config configs/experiments/week07_moons.yaml`. The notebook's cells were not run "
        "(no printed accuracies), so there is no figure of its own to set beside ours.",
        markdown_table(["train accuracy", "test accuracy", "train loss", "fit s"], base_rows, digits=4),
        "Gradient check on freshly initialised weights, first 10 training rows (hand-derived vs central "
        "differences and vs autograd; the run also checks at fit start and stops on failure):",
        markdown_table(["parameter", "max rel. error"], gradient_rows),
        f"### Initialisation ({init_epochs} epochs; the notebook's stds for both layers, seeds {seeds}; one sweep)",
        f"Command: `python train.py sweep --config configs/experiments/week07_moons.yaml --trainer.max_epochs "
        f"{init_epochs} --sweep configs/sweeps/week07_inits.yaml`; the {len(inits.member_curves())} "
        f"members (every std with every seed; a seed sets the initial weights and the data order) took "
        f"{init_seconds:.1f} s, trained together. The train loss is the full-batch loss at the start of the "
        "epoch, i.e. before that epoch's update (the loss its gradient is taken of); test accuracy is read after "
        "the update.",
        markdown_table(
            ["init", "std", "epoch", f"test accuracy, seeds {seeds}", "train loss, mean (min-max)", "flags"],
            init_rows,
        ),
        init_image,
        f"### Exercises ({epochs} epochs each; all hand-derived gradients)",
        markdown_table(["variant", "train accuracy", "test accuracy", "train loss"], exercise_rows, digits=4),
        " ".join(images),
    )


def gradient_errors(result: RunResult) -> dict[str, float]:
    """Largest relative error per parameter on a freshly initialised net of the run's spec, first 10 rows."""
    x, y = result.datamodule.tensors("train")
    net = ManualMLP(result.module.spec).double()
    return {f"{e.name} vs {e.reference}": e.max_rel for e in check_gradients(net, x[:10], y[:10])}
