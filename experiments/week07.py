"""Week 7 (notebook 001): moons baseline with gradient check, the initialisation comparison, the exercises."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from callbacks.figures import decision_boundary_figure, new_figure
from callbacks.gradient_check import check_gradients
from experiments.probe import EpochProbe
from experiments.report import Report
from experiments.runner import RunResult, run
from models.layers.heads import output_activation
from models.manual_net import ManualMLP
from reporting.tables import markdown_table

# The notebook's stds: small 0.01, "xavier" sqrt(2 / (fan_in + fan_out)) = sqrt(2 / 12) for both layers,
# "he" sqrt(2 / fan_in) = 1 for both layers (it uses the input layer's sizes throughout).
INITS = {"small": 0.01, "xavier": math.sqrt(2.0 / 12), "he": 1.0}
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


def main(report: Report, quick: bool, work_dir: Path) -> None:
    epochs = 100 if quick else 1000
    base = run("week07_moons", [f"--trainer.max_epochs={epochs}"], quiet=False)
    gradient_rows = [[name, f"{err:.2e}"] for name, err in gradient_errors(base).items()]
    base_rows = [[base.last["train/accuracy"], base.last["test/accuracy"], base.last["train/loss"], base.seconds]]
    images = [boundary_image(report, base, "week07_boundary_baseline", "moons 2-10-2 ReLU, full batch lr 0.5")]

    init_epochs = 50 if quick else 500
    curves, init_rows = {}, []
    for name, std in INITS.items():
        r = run(
            "week07_moons",
            [f"--model.init_args.net.init_std={std}", f"--trainer.max_epochs={init_epochs}", "--trainer.callbacks=[]"],
            EpochProbe(every=1),
        )
        curves[name] = [rec["train/loss"] for rec in r.records]
        init_rows.append([name, f"{std:.4f}", r.last["test/accuracy"], curves[name][-1]])
    figure = new_figure()
    ax = figure.add_subplot()
    for name, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, label=name, linewidth=2)
    ax.set_yscale("log")
    ax.set_xlabel("epoch (one full-batch update)")
    ax.set_ylabel("training loss (after the update)")
    ax.set_title("moons: initialisation comparison")
    ax.legend()
    init_image = report.figure(figure, "week07_init_losses", "initialisation comparison, log-scale loss")

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
        f"### Initialisation ({init_epochs} epochs; the notebook's stds for both layers)",
        markdown_table(["init", "std", "test accuracy", "final train loss"], init_rows, digits=4),
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
