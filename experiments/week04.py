"""Week 4 (notebook 000): the default run with both modules, and the "try it now" grid over seeds.

The grid is one `train.py sweep`: all (lr, hidden, seed) trajectories train stacked, each read after
epochs 30, 60 and 100 (with a constant learning rate and the same per-epoch permutations, the first
30 epochs of a 100-epoch run are exactly a 30-epoch run, so three results come from one trajectory).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from callbacks.figures import new_figure
from commands.sweep import run_sweep
from experiments.report import Report
from experiments.runner import ROOT, run
from models.tables import markdown_table
from train import make_cli

LRS = (0.01, 0.05, 0.1, 0.2)
EPOCHS = (30, 60, 100)
HIDDEN = ((3, 3), (5, 5), (10, 10))
SEEDS = (0, 1, 2)


def main(report: Report, quick: bool, work_dir: Path) -> None:
    default_rows = []
    for module in ("models.ManualModule", "models.NativeModule"):
        r = run("week04", [f"--model={module}"] if module.endswith("Native") else [])
        m = r.last
        default_rows.append([module.split(".")[1], m["test/accuracy"], m["test/f1"], m["train/loss"], r.seconds])
    seeds = SEEDS[:1] if quick else SEEDS
    lrs = LRS[1:3] if quick else LRS
    hidden_sizes = HIDDEN[:1] if quick else HIDDEN
    epochs = (3, 6) if quick else EPOCHS
    grid = work_dir / "week04_grid.yaml"
    grid.write_text(
        "grid:\n"
        f"  model.init_args.optimizer.init_args.lr: {list(lrs)}\n"
        f"  model.init_args.net.hidden_sizes: {[list(h) for h in hidden_sizes]}\n"
        f"  seed: {list(seeds)}\n"
        f"snapshots: {list(epochs)}\n"
    )
    args = ["--config", str(ROOT / "configs/experiments/week04.yaml"), f"--trainer.max_epochs={max(epochs)}"]
    start = time.perf_counter()
    result = run_sweep(
        make_cli, [*args, "--trainer.enable_progress_bar=false"], str(grid), save_dir=str(work_dir / "runs")
    )
    sweep_seconds = time.perf_counter() - start
    f1: dict[tuple[float, tuple[int, int], int], list[float]] = {}
    collapsed: dict[tuple[float, tuple[int, int], int], int] = {}
    for row in result.rows:
        values = row["values"]
        key = (
            values["model.init_args.optimizer.init_args.lr"],
            tuple(values["model.init_args.net.hidden_sizes"]),
            row["epoch"],
        )
        f1.setdefault(key, []).append(row["test_f1"])
        collapsed[key] = collapsed.get(key, 0) + row["collapsed"]
    rows = []
    for (lr, hidden, e), values in f1.items():
        n_collapsed = collapsed[(lr, hidden, e)]
        flag = f"**{n_collapsed}/{len(values)} collapsed**" if n_collapsed else "no"
        rows.append([f"{lr:g}", e, f"{hidden[0]},{hidden[1]}", np.mean(values), min(values), max(values), flag])
    figure = new_figure(10, 3.6)
    for i, hidden in enumerate(hidden_sizes):
        ax = figure.add_subplot(1, len(hidden_sizes), i + 1)
        for lr in lrs:
            ax.plot(epochs, [np.mean(f1[(lr, hidden, e)]) for e in epochs], marker="o", label=f"lr {lr:g}")
        ax.set_title(f"hidden {hidden[0]},{hidden[1]}")
        ax.set_xlabel("epochs")
        ax.set_ylim(-0.02, 1.02)
        if i == 0:
            ax.set_ylabel(f"test macro F1 (mean of {len(seeds)} seeds)")
            ax.legend()
    image = report.figure(figure, "week04_grid_f1", "week 4 grid: test F1")
    report.add(
        "## Week 4 (notebook 000)",
        "2-3-3-2 sigmoid net without bias, softmax cross-entropy, one SGD update per example in the notebook's "
        "permutation order, lr 0.1, 30 epochs, float64. Command: "
        "`python train.py fit --config configs/experiments/week04.yaml` (add `--model models.NativeModule` "
        "for autograd). The notebook prints no scores of its own to compare with.",
        markdown_table(["module", "test accuracy", "test macro F1", "train loss", "fit s"], default_rows, digits=4),
        f"### Try-it-now grid ({len(seeds)} seeds: init_seed = data seed = {', '.join(map(str, seeds))}; "
        "hand-derived, one sweep)",
        f"Command: `python train.py sweep --config configs/experiments/week04.yaml --trainer.max_epochs {max(epochs)} "
        f"--sweep configs/sweeps/week04_grid.yaml`; the {len(result.stacks[0][0])} trajectories took "
        f"{sweep_seconds:.1f} s in one sweep.",
        "A setting is flagged when a seed's predictions on the test split all fall in one class "
        "(precision, recall and F1 of the other class are then 0, the notebook's 'why F1 = 0' case).",
        markdown_table(["lr", "epochs", "hidden", "mean F1", "min F1", "max F1", "collapse"], rows, digits=4),
        image,
    )
