"""MNIST week (notebook 002) on Fashion-MNIST: the Day-29 sanity run, toy gradient check, ReLU vs sigmoid, the
MLP, SGD vs Adam.

On the toy blobs, ReLU vs sigmoid (configs/sweeps/mnist_week_activations.yaml) and the optimiser grid
SGD/Adam x lr 0.001/0.01/0.1 (configs/sweeps/mnist_week_optimizers.yaml) are sweeps; each runs as two
stacks (an activation or an optimiser class is a stack of its own). On Fashion-MNIST the notebook's own runs
(validation curves, the model graph, save and reload) are single fits, and the same two grids are sweeps of the
784-256-256-10 MLP (configs/sweeps/fashion_mnist_optimizers.yaml, fashion_mnist_activations.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from matplotlib.figure import Figure

from callbacks.figures import new_figure
from callbacks.gradient_check import check_gradients
from commands.sweep import SweepResult, run_sweep
from commands.sweep_figures import grid_figures
from experiments.probe import EpochProbe, split_metrics
from experiments.report import Report
from experiments.runner import ROOT, RunResult, run
from models import ManualModule, MLPSpec
from models.manual_net import ManualMLP
from models.tables import markdown_table
from train import make_cli

TOY_CONFIG = ROOT / "configs" / "experiments" / "mnist_toy.yaml"
DAY29_PRINTS = 4  # the notebook prints the loss every epochs // 4 epochs
ACTIVATION_SWEEP = ROOT / "configs" / "sweeps" / "mnist_week_activations.yaml"
OPTIMIZER_SWEEP = ROOT / "configs" / "sweeps" / "mnist_week_optimizers.yaml"
FASHION_CONFIG = ROOT / "configs" / "experiments" / "fashion_mnist_mlp.yaml"
FASHION_OPTIMIZER_SWEEP = ROOT / "configs" / "sweeps" / "fashion_mnist_optimizers.yaml"
FASHION_ACTIVATION_SWEEP = ROOT / "configs" / "sweeps" / "fashion_mnist_activations.yaml"
# The sweep files read the test split after each of the notebook's 5 epochs. --quick trains one epoch on 5% of the
# training split (a larger validation split).
FASHION_SWEEP_EPOCHS = 5
QUICK_FASHION = ["--trainer.max_epochs=1", "--data.init_args.val_fraction=0.95"]
ACTIVATION_AXIS = "model.init_args.net.activation"
OPTIMIZER_AXIS = "model.init_args.optimizer.class_path"
LR_AXIS = "model.init_args.optimizer.init_args.lr"
ADAM = ["--model.init_args.optimizer.class_path=torch.optim.Adam", "--model.init_args.optimizer.init_args.lr=0.001"]


class UpdateLosses(pl.Callback):
    """The loss of every optimiser update, in order: the notebook's ``losses`` list, each taken before its update."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        self.values += pl_module.update_losses.tolist()


def day29_sanity_run(report: Report, quick: bool) -> str:
    """Day 29: the NumPy 2-layer net's sanity run (2-8-2 ReLU, lr 0.5, 200 full-batch epochs), with its loss plot."""
    epochs = 40 if quick else 200
    losses = UpdateLosses()
    result = run("mnist_day29", [f"--trainer.max_epochs={epochs}"], callbacks=[losses])
    printed = range(epochs // DAY29_PRINTS, epochs + 1, epochs // DAY29_PRINTS)
    figure = new_figure()
    ax = figure.add_subplot()
    ax.plot(np.arange(1, len(losses.values) + 1), losses.values)
    ax.set_xlabel("epoch (one full-batch update each)")
    ax.set_ylabel("training loss before the epoch's update")
    ax.set_title("Day 29: 2-8-2 ReLU on the toy blobs, lr 0.5")
    image = report.figure(figure, "mnist_week_day29_loss", "Day-29 sanity run: training loss per epoch")
    return "\n\n".join(
        [
            f"### Day 29: sanity run of the 2-layer net (2-8-2 ReLU, lr 0.5, {epochs} full-batch epochs)",
            "`python train.py fit --config configs/experiments/mnist_day29.yaml`: the notebook's "
            "`TwoLayerMLP(2, 8, 2, weight_scale=0.1)` draw (seed 42), trained on all 160 toy rows. The notebook has "
            "no train/test split, so the run has none either (`data.test_size: 0`): its test reads the training "
            "rows, and there is no validation split. `tests/test_mnist_week.py` replays the notebook's loop: the "
            "same final weights to 1e-12 and losses to 1e-10 (the notebook adds 1e-12 inside its log). The notebook "
            "prints the loss at these epochs (its outputs are not saved, so there is no printed value to set beside "
            "ours):",
            markdown_table(
                ["epoch", "loss before that epoch's update"],
                [[e, f"{losses.values[e - 1]:.4f}"] for e in printed],
            ),
            f"Accuracy on the 160 training rows after the last update: {result.last['test/accuracy']:.4f}; "
            f"fit {result.seconds:.1f} s.",
            image,
        ]
    )


def save_and_check(result: RunResult, path: Path) -> float:
    """Weights-only save, reload into a new module, and its test accuracy (must equal the trained one's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result.module.net.state_dict(), path)
    fresh = ManualModule(MLPSpec(**result.module.hparams["net"])).to(result.module.dtype)
    fresh.net.load_state_dict(torch.load(path, weights_only=True))
    x, y = result.datamodule.tensors("test")
    with torch.no_grad():
        return split_metrics(fresh, "test", x, y)["test/accuracy"]


def toy_sweep(sweep_file: Path, epochs: int, work_dir: Path) -> tuple[SweepResult, float]:
    """The members of ``sweep_file`` on the toy config for ``epochs`` full-batch updates; result and seconds."""
    args = ["--config", str(TOY_CONFIG), f"--trainer.max_epochs={epochs}", "--trainer.enable_progress_bar=false"]
    start = time.perf_counter()
    result = run_sweep(make_cli, args, str(sweep_file), str(work_dir / "runs"))
    return result, time.perf_counter() - start


def fashion_sweep(sweep_file: Path, quick: bool, work_dir: Path) -> tuple[SweepResult, float]:
    """The members of ``sweep_file`` on the Fashion-MNIST MLP config; result and seconds."""
    epochs = QUICK_FASHION if quick else [f"--trainer.max_epochs={FASHION_SWEEP_EPOCHS}"]
    args = ["--config", str(FASHION_CONFIG), *epochs, "--trainer.enable_progress_bar=false"]
    start = time.perf_counter()
    result = run_sweep(make_cli, args, str(sweep_file), str(work_dir / "runs"))
    return result, time.perf_counter() - start


def accuracy_by_epoch(result: SweepResult, member: str) -> list[float]:
    return [row["test_accuracy"] for row in result.rows if row["member"] == member]


def final_rows(result: SweepResult) -> list[dict]:
    """Each member's last results row, in member order."""
    return list({row["member"]: row for row in result.rows}.values())  # epoch order: the last one wins


def flags(row: dict) -> str:
    return ", ".join(k for k in ("collapsed", "diverged") if row[k]) or "no"


def curves_figure(result: SweepResult, style: Callable[[dict], dict], title: str, log: bool = False) -> Figure:
    """Every member's training loss per epoch (before that epoch's full-batch update), drawn in ``style(values)``."""
    figure = new_figure()
    ax = figure.add_subplot()
    for _, values, losses in result.member_curves():
        ax.plot(np.arange(1, len(losses) + 1), losses, **style(values))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch (one full-batch update each)")
    ax.set_ylabel("training loss before the epoch's update")
    ax.set_title(title)
    ax.legend()
    return figure


def optimizer_style(values: dict) -> dict:
    optimizer = values[OPTIMIZER_AXIS].rsplit(".", 1)[-1]
    lrs = (0.001, 0.01, 0.1)
    color = f"C{lrs.index(values[LR_AXIS])}" if values[LR_AXIS] in lrs else None
    return {"label": f"{optimizer} lr {values[LR_AXIS]:g}", "color": color, "ls": "-" if optimizer == "SGD" else "--"}


def main(report: Report, quick: bool, work_dir: Path) -> None:
    day29 = day29_sanity_run(report, quick)
    toy_epochs = 30 if quick else 150
    activations, activation_seconds = toy_sweep(ACTIVATION_SWEEP, toy_epochs, work_dir)
    data = activations.stacks[0][0][0].data  # the toy training split, as the DataModule gives it
    net = ManualMLP(MLPSpec(2, [5], 2, activation="relu", init="normal", init_std=0.01, init_seed=0)).double()
    errors = check_gradients(net, data.x_train[:5], data.y_train[:5])
    grad_rows = [[f"{e.name} vs {e.reference}", f"{e.max_rel:.2e}", f"{e.mean_rel:.2e}"] for e in errors]
    figure = curves_figure(
        activations,
        lambda values: {"label": values[ACTIVATION_AXIS]},
        "toy blobs: ReLU vs sigmoid, 2-16-2, lr 0.3",
    )
    toy_image = report.figure(figure, "mnist_week_toy_activations", "ReLU vs sigmoid on toy data")
    toy_rows = [
        [r["values"][ACTIVATION_AXIS], f"{r['train_loss']:.4g}", r["test_accuracy"], r["test_f1"], flags(r)]
        for r in final_rows(activations)
    ]
    optimizers, optimizer_seconds = toy_sweep(OPTIMIZER_SWEEP, toy_epochs, work_dir)
    optimizer_rows = [
        [
            r["values"][OPTIMIZER_AXIS].rsplit(".", 1)[-1],
            f"{r['values'][LR_AXIS]:g}",
            f"{r['train_loss']:.4g}",
            r["test_accuracy"],
            r["test_f1"],
            flags(r),
        ]
        for r in final_rows(optimizers)
    ]
    figure = curves_figure(optimizers, optimizer_style, "toy blobs: SGD (solid) vs Adam (dashed)", log=True)
    optimizer_image = report.figure(figure, "mnist_week_toy_optimizers", "SGD vs Adam on toy data")

    limit = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2"] if quick else []
    probe_epochs = range(1, 6)
    sgd = run(
        "fashion_mnist_mlp",
        [
            *limit,
            "--trainer.enable_progress_bar=false",
            "--weights_export.print_final=false",
        ],
        EpochProbe(epochs=probe_epochs, splits=("val", "test")),
        quiet=False,  # the config's dashboard draws the graph (Graphs tab)
    )
    saved = work_dir / "fashion_mnist_mlp.pt"
    reloaded_acc = save_and_check(sgd, saved)
    adam = run("fashion_mnist_mlp", [*limit, *ADAM], EpochProbe(epochs=probe_epochs, splits=("val", "test")))
    figure = new_figure(10, 3.8)
    for i, (key, label) in enumerate((("val/loss", "validation loss"), ("val/accuracy", "validation accuracy"))):
        ax = figure.add_subplot(1, 2, i + 1)
        for name, r in (("SGD lr 0.1", sgd), ("Adam lr 1e-3", adam)):
            ax.plot([rec["epoch"] for rec in r.records], [rec[key] for rec in r.records], marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    opt_image = report.figure(figure, "mnist_week_sgd_vs_adam", "SGD vs Adam on Fashion-MNIST")
    opt_rows = [
        [name, r.last["val/accuracy"], r.last["test/accuracy"], r.last["test/loss"], r.seconds]
        for name, r in (("SGD lr 0.1, batches of 128", sgd), ("Adam lr 1e-3, batches of 128", adam))
    ]
    log_dir = Path(sgd.trainer.log_dir).resolve().relative_to(Path.cwd().resolve())
    report.add(
        "## MNIST week (notebook 002), on Fashion-MNIST",
        "Offline, Fashion-MNIST from Debian's `dataset-fashion-mnist`; `--data.init_args.dataset mnist` runs "
        "MNIST where it can be downloaded. The notebook leaves its accuracies blank (`__%`), so there is nothing "
        "of its own to compare with.",
        day29,
        f"### Toy data (the notebook's two blobs, {toy_epochs} full-batch updates)",
        "Gradient check of a fresh 2-5-2 ReLU net (weights N(0, 0.01)) on 5 rows:",
        markdown_table(["parameter", "max rel. error", "mean rel. error"], grad_rows),
        "`python train.py fit --config configs/experiments/mnist_toy.yaml [--model.init_args.net.activation sigmoid]` "
        "runs one; both as a sweep: `python train.py sweep --config configs/experiments/mnist_toy.yaml "
        f"--trainer.max_epochs {toy_epochs} --sweep configs/sweeps/mnist_week_activations.yaml` "
        f"(two stacks, {activation_seconds:.1f} s). As in the notebook, every run trains on all 160 rows with no "
        "split (`data.test_size: 0`), so accuracy and F1 are read on the training rows, after the last update. The "
        "train loss is the full-batch loss at the start of the last epoch, before its update.",
        markdown_table(
            [
                "activation",
                f"train loss (before update {toy_epochs})",
                "accuracy (training rows)",
                "macro F1 (training rows)",
                "flags",
            ],
            toy_rows,
            digits=4,
        ),
        toy_image,
        f"#### Optimisers (SGD and Adam, each at lr 0.001, 0.01 and 0.1; ReLU, {toy_epochs} full-batch updates)",
        "`python train.py sweep --config configs/experiments/mnist_toy.yaml "
        f"--trainer.max_epochs {toy_epochs} --sweep configs/sweeps/mnist_week_optimizers.yaml`: "
        f"{len(optimizer_rows)} members in two stacks (SGD, Adam), {optimizer_seconds:.1f} s. A member is flagged "
        "collapsed when it predicts one class for every row.",
        markdown_table(
            [
                "optimizer",
                "lr",
                f"train loss (before update {toy_epochs})",
                "accuracy (training rows)",
                "macro F1 (training rows)",
                "flags",
            ],
            optimizer_rows,
            digits=4,
        ),
        optimizer_image,
        "### 784-256-256-10 ReLU MLP, 5 epochs",
        "`python train.py fit --config configs/experiments/fashion_mnist_mlp.yaml` (Adam: add "
        "`--model.init_args.optimizer.class_path torch.optim.Adam --model.init_args.optimizer.init_args.lr 0.001`).",
        markdown_table(["optimizer", "val accuracy", "test accuracy", "test loss", "fit s"], opt_rows, digits=4),
        opt_image,
        f"TensorBoard run with the model graph (Graphs tab): `tensorboard --logdir {log_dir}`. Weights saved "
        f"weights-only to `{saved.name}` and reloaded with `torch.load(weights_only=True)` into a new module: "
        f"test accuracy {reloaded_acc:.4f} (trained module: {sgd.last['test/accuracy']:.4f}).",
    )
    fashion_grids(report, quick, work_dir)


def fashion_grids(report: Report, quick: bool, work_dir: Path) -> None:
    """SGD vs Adam x learning rate, and ReLU vs sigmoid, on Fashion-MNIST: one sweep each."""
    optimizers, optimizer_seconds = fashion_sweep(FASHION_OPTIMIZER_SWEEP, quick, work_dir)
    activations, activation_seconds = fashion_sweep(FASHION_ACTIVATION_SWEEP, quick, work_dir)
    epochs = max(row["epoch"] for row in optimizers.rows)
    by_epoch = [f"test accuracy after epoch {e}" for e in sorted({row["epoch"] for row in optimizers.rows})]
    optimizer_rows = [
        [
            r["values"][OPTIMIZER_AXIS].rsplit(".", 1)[-1],
            f"{r['values'][LR_AXIS]:g}",
            *accuracy_by_epoch(optimizers, r["member"]),
            r["test_f1"],
            f"{r['train_loss']:.4g}",
            flags(r),
        ]
        for r in final_rows(optimizers)
    ]
    activation_rows = [
        [r["values"][ACTIVATION_AXIS], *accuracy_by_epoch(activations, r["member"]), r["test_f1"], flags(r)]
        for r in final_rows(activations)
    ]
    heat_map = next(f for f in grid_figures(optimizers.rows) if f.epoch == epochs)
    image = report.figure(heat_map.figure, "mnist_week_fashion_optimizers", "SGD vs Adam x lr on Fashion-MNIST")
    command = "python train.py sweep --config configs/experiments/fashion_mnist_mlp.yaml --trainer.max_epochs"
    report.add(
        f"### The grids on Fashion-MNIST, as sweeps ({epochs} epoch{'s' if epochs != 1 else ''})",
        "The notebook's comparisons on the 784-256-256-10 ReLU MLP (batches of 128, one shared data order): every "
        "member of a stack trains on the same batches. "
        f"`{command} {epochs} --sweep configs/sweeps/fashion_mnist_optimizers.yaml`: "
        f"{len(optimizer_rows)} members in two stacks (SGD, Adam), {optimizer_seconds:.0f} s. The sweep files read "
        f"the test split after each of 5 epochs, as the notebook trains 5; here {epochs}, to keep this report "
        "within minutes. Train loss: the last epoch's mean over its updates."
        + (" Quick mode: one epoch on 5% of the training split." if quick else ""),
        markdown_table(
            ["optimizer", "lr", *by_epoch, "test macro F1", "train loss", "flags"], optimizer_rows, digits=4
        ),
        image,
        f"`{command} {epochs} --sweep configs/sweeps/fashion_mnist_activations.yaml` (SGD lr 0.1; two stacks of "
        f"one member, {activation_seconds:.0f} s):",
        markdown_table(["activation", *by_epoch, "test macro F1", "flags"], activation_rows, digits=4),
    )
