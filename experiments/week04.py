"""Week 4 (notebook 000): its run from scratch beside PyTorch, as the notebook shows them, and the "try it now" grid.

The side-by-side part is two `train.py compare` runs: the autograd twin from the hand-derived run's own start
(identical weights and data order: the two agree to rounding), and the twin from PyTorch's own start
(`--twin_start torch`: torch's default initialisation and torch.randperm order, as the notebook's torch cell
builds and trains its model). RESULTS gets the notebook's P/R/F1 table, both confusion matrices with the
predicted-class counts, the final weights and both per-step loss curves.

The grid is one `train.py sweep`: all (lr, hidden, seed) trajectories train stacked, each read after
epochs 30, 60 and 100 (with a constant learning rate and the same per-epoch permutations, the first
30 epochs of a 100-epoch run are exactly a 30-epoch run, so three results come from one trajectory).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from callbacks.figures import moving_average, new_figure
from callbacks.weights_export import format_weights, notebook_weights
from commands.compare import Comparison, ModelRun, compare
from commands.sweep import run_sweep
from experiments.report import Report
from experiments.runner import ROOT
from models.tables import markdown_table
from train import make_cli

CONFIG = ROOT / "configs" / "experiments" / "week04.yaml"
LRS = (0.01, 0.05, 0.1, 0.2)
EPOCHS = (30, 60, 100)
HIDDEN = ((3, 3), (5, 5), (10, 10))
SEEDS = (0, 1, 2)
ROWS_PER_EPOCH = 400  # the notebook's training rows, one SGD step each


def run_label(run: ModelRun, twin_start: str) -> str:
    """The notebook's two rows: from scratch, and the PyTorch framework (with where it started)."""
    if run.label == "manual":
        return "from scratch (hand-derived), the notebook's start"
    return "PyTorch (autograd), " + ("the same start and order" if twin_start == "same" else "PyTorch's own start")


def side_by_side(results: dict[str, Comparison]) -> tuple[list[list[object]], dict[str, ModelRun]]:
    """The notebook's results table (precision, recall, F1) with accuracy, last-epoch loss and fit time;
    the scratch run once (the same in both comparisons), then each twin."""
    runs = {run_label(results["same"].runs["manual"], "same"): results["same"].runs["manual"]}
    runs.update({run_label(c.runs["native"], start): c.runs["native"] for start, c in results.items()})
    rows = []
    for name, run in runs.items():
        m = run.metrics
        last_epoch = np.mean(run.step_losses[-ROWS_PER_EPOCH:]) if run.step_losses else None
        scores = [m["test/precision"], m["test/recall"], m["test/f1"], m["test/accuracy"]]
        rows.append([name, *scores, last_epoch, f"{run.seconds:.2f}"])
    return rows, runs


def confusion_rows(runs: dict[str, ModelRun]) -> list[list[object]]:
    """Per run: its test confusion matrix (rows: true class) and the predicted-class counts (column sums),
    the notebook's diagnostic for a collapse onto one class."""
    rows: list[list[object]] = []
    for name, run in runs.items():
        counts = np.asarray(run.confusion, dtype=np.int64)
        rows += [[name, f"true {i}", *counts[i].tolist()] for i in range(len(counts))]
        rows.append([name, "predicted count", *counts.sum(0).tolist()])
    return rows


def differences_sentence(results: dict[str, Comparison]) -> str:
    """What the PyTorch-start twin changes, measured: starting weights, data order, and where it ends."""
    same, torch_start = results["same"], results["torch"]
    scratch, twin = same.runs["manual"], torch_start.runs["native"]
    start_scale = {
        name: max(float(t.abs().max()) for key, t in run.recorder.initial.items() if key.endswith("weight"))
        for name, run in (("scratch", scratch), ("twin", twin))
    }
    confusions = {name: np.asarray(run.confusion) for name, run in (("scratch", scratch), ("twin", twin))}
    predictions = {name: c.sum(0) for name, c in confusions.items()}
    errors = {name: int(c.sum() - np.trace(c)) for name, c in confusions.items()}
    scores = [[run.metrics[f"test/{k}"] for k in ("precision", "recall", "f1")] for run in same.runs.values()]
    gap = float(np.abs(np.subtract(*scores)).max())
    agree = "agree to every digit" if gap == 0 else f"differ by up to {gap:.1e}"
    return (
        "With the same start and order, the autograd twin *is* the scratch run: its final weights differ by "
        f"{same.max_weight_diff:.1e} (rounding), and precision, recall and F1 {agree}. From PyTorch's "
        "own start the twin is another training, for two reasons only, neither of them the gradients: its "
        "weights come from `nn.Linear`'s default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) under `torch.manual_seed(0)` "
        f"(largest |w| {start_scale['twin']:.3f}, against {start_scale['scratch']:.3f} for the notebook's "
        "N(0, 0.2) draw), and it visits the rows in `torch.randperm` order instead of NumPy's `permutation`. Its "
        f"final weights lie up to {torch_start.max_weight_diff:.3g} from the scratch run's; test F1 "
        f"{twin.metrics['test/f1']:.4f} against {scratch.metrics['test/f1']:.4f}, predicted counts "
        f"{predictions['twin'].tolist()} against {predictions['scratch'].tolist()}, {errors['twin']} misclassified "
        f"test rows against {errors['scratch']}. So when the notebook's PyTorch row does better (or worse), that is "
        "its start and its order: the notebook never seeds torch, so that row changes from run to run."
    )


def loss_panels(curves: dict[str, list[float]]) -> Figure:
    """The notebook's two plots side by side: every SGD step's loss, with its mean over one epoch on top."""
    figure = new_figure(11, 3.8)
    axes = figure.subplots(1, len(curves), sharey=True)
    for ax, (name, losses) in zip(axes, curves.items()):
        values = np.asarray(losses)
        ax.plot(values, linewidth=0.3, color="tab:blue", alpha=0.6, label="loss of each step")
        average = moving_average(values, ROWS_PER_EPOCH)
        ax.plot(average, linewidth=2, color="black", label=f"mean of the last {ROWS_PER_EPOCH}")
        ax.set_title(f"{name}: training loss per step")
        ax.set_xlabel("SGD step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cross-entropy loss")
    axes[0].legend(loc="upper right")
    return figure


def side_by_side_section(report: Report, epochs: int, work_dir: Path) -> list[str]:
    """The notebook's comparison (its sections 6 to 9), from two `compare` runs."""
    args = [
        "--config",
        str(CONFIG),
        f"--trainer.max_epochs={epochs}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--weights_export.print_final=false",
        f"--trainer.logger.init_args.save_dir={work_dir / 'runs'}",
    ]
    results = {start: compare(make_cli, args, start) for start in ("same", "torch")}
    rows, runs = side_by_side(results)
    scratch, twin = results["same"].runs["manual"], results["torch"].runs["native"]
    figure = loss_panels(
        {"from scratch (hand-derived)": scratch.step_losses, "PyTorch (autograd), its own start": twin.step_losses}
    )
    image = report.figure(figure, "week04_losses", "week 4: per-step training loss, scratch and PyTorch")
    same_curve = np.abs(np.subtract(scratch.step_losses, results["same"].runs["native"].step_losses)).max()
    return [
        "### From scratch beside PyTorch (the notebook's sections 6-9)",
        "Commands: `python train.py compare --config configs/experiments/week04.yaml` (the autograd twin from the "
        "same start and order) and the same with `--twin_start torch` (the twin from PyTorch's own start, as the "
        "notebook's torch cell: `nn.Linear` defaults under `torch.manual_seed(0)`, `torch.randperm` order). "
        "Macro averages on the 200 test rows; train loss is the mean of the last epoch's 400 per-step losses.",
        markdown_table(["model", "precision", "recall", "F1", "accuracy", "train loss", "fit s"], rows),
        "Test confusion matrices (rows: true class) and the predicted-class counts:",
        markdown_table(["model", "", "pred 0", "pred 1"], confusion_rows(runs)),
        differences_sentence(results),
        f"Final weights, from scratch (the notebook's section 9; the same-start twin's equal them to "
        f"{results['same'].max_weight_diff:.1e}):",
        f"```\n{format_weights(notebook_weights(scratch.module))}\n```",
        "Final weights, PyTorch from its own start (`W` in the notebook's (fan_in, fan_out) orientation):",
        f"```\n{format_weights(notebook_weights(twin.module))}\n```",
        f"Per-step losses, as the notebook plots them (faint: every step's loss, bold: its mean over the last "
        f"epoch). The same-start twin's curve lies on the scratch one (largest per-step difference "
        f"{same_curve:.1e}), so it is not drawn.",
        image,
    ]


def main(report: Report, quick: bool, work_dir: Path) -> None:
    comparison = side_by_side_section(report, 3 if quick else 30, work_dir)
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
    args = ["--config", str(CONFIG), f"--trainer.max_epochs={max(epochs)}"]
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
        "permutation order, lr 0.1, 30 epochs, float64, on the notebook's synthetic blobs (400 train, 200 test "
        "rows). Command: `python train.py fit --config configs/experiments/week04.yaml` (add "
        "`--model models.NativeModule` for autograd). The notebook prints no scores of its own to compare with.",
        *comparison,
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
