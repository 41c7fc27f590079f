"""MNIST week (notebook 002), its "next ideas": dropout, batch norm, data augmentation, a LeNet-style CNN and
OneCycle, on Fashion-MNIST.

Each idea is a config layered on the MLP config (configs/experiments/next_ideas/), so every run differs
from the notebook's MLP in that one respect.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

from callbacks.figures import new_figure
from commands.compare import max_difference
from experiments.probe import EpochProbe
from experiments.report import Report
from experiments.runner import CONFIGS, RunResult, run
from models.tables import markdown_table

NEXT_IDEAS = CONFIGS / "next_ideas"
BASE = "fashion_mnist_mlp"


class RateProbe(pl.Callback):
    """The learning rate in force after every training step, against the optimiser updates made so far."""

    def __init__(self) -> None:
        self.updates: list[int] = []
        self.rates: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        self.updates.append(pl_module.updates_done)
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def command(layer: str | None, native: bool = False) -> str:
    parts = [f"python train.py fit --config configs/experiments/{BASE}.yaml"]
    if layer:
        parts.append(f"--config configs/experiments/next_ideas/{layer}.yaml")
    if native:
        parts.append("--model.class_path models.NativeModule")
    return "`" + " ".join(parts) + "`"


def max_weight_difference(a: RunResult, b: RunResult) -> float:
    return max_difference(a.module.net.state_dict(), b.module.net.state_dict())


def main(report: Report, quick: bool, work_dir: Path) -> None:
    epochs = 2 if quick else 5
    common = [f"--trainer.max_epochs={epochs}", *(["--trainer.limit_train_batches=2"] if quick else [])]

    def fit(layer: str | None, *extra: str, **kwargs: object) -> RunResult:
        layers = [NEXT_IDEAS / f"{layer}.yaml"] if layer else []
        probe = EpochProbe(epochs=range(1, epochs + 1), splits=("val", "test"))
        return run(BASE, [*common, *extra], probe, layers=layers, **kwargs)

    constant_rates, cycle_rates = RateProbe(), RateProbe()
    constant = fit(None, callbacks=[constant_rates])
    # Not quiet: TensorBoard shows the schedule (LearningRateMonitor needs the logger).
    one_cycle = fit(
        "one_cycle",
        "--trainer.enable_progress_bar=false",
        "--weights_export.print_final=false",
        quiet=False,
        callbacks=[cycle_rates],
    )
    lenet_manual = fit("lenet")
    lenet_native = fit("lenet", "--model.class_path=models.NativeModule")
    batch_norm, augment = fit("batch_norm"), fit("augment")
    # The same comparison in float64 over one training step (40 updates): rounding no longer compounds.
    block64 = ["--trainer.max_steps=1", "--trainer.precision=64-true"]
    native = ["--model.class_path=models.NativeModule"]
    lenet64 = [fit("lenet", *block64, *module) for module in ([], native)]
    batch_norm64 = [fit("batch_norm", *block64, *module) for module in ([], native)]
    runs = {
        "MLP 784-256-256-10, constant lr 0.1 (the notebook's)": (constant, command(None)),
        "MLP + dropout 0.2": (fit("dropout"), command("dropout")),
        "MLP + batch norm after each hidden layer": (batch_norm, command("batch_norm")),
        "MLP, training images augmented (up to 10 degrees, 10% shifts)": (augment, command("augment")),
        "MLP, OneCycle up to lr 0.2": (one_cycle, command("one_cycle")),
        "LeNet-style CNN, hand-derived": (lenet_manual, command("lenet")),
        "LeNet-style CNN, autograd": (lenet_native, command("lenet", native=True)),
    }

    figure = new_figure(11, 4)
    ax = figure.add_subplot(1, 2, 1)
    for name, (r, _) in runs.items():
        ax.plot([rec["epoch"] for rec in r.records], [rec["val/accuracy"] for rec in r.records], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize=7)
    ax = figure.add_subplot(1, 2, 2)
    for name, rates in (("constant", constant_rates), ("OneCycle", cycle_rates)):
        ax.plot(rates.updates, rates.rates, label=name)
    ax.set_xlabel("optimiser updates made (batches of 128)")
    ax.set_ylabel("learning rate after the step")
    ax.legend()
    image = report.figure(figure, "mnist_week_next_ideas", "Next ideas on Fashion-MNIST: accuracy and schedule")
    rows = [
        [name, r.last["val/accuracy"], r.last["test/accuracy"], r.last["test/loss"], f"{r.seconds:.0f}", cmd]
        for name, (r, cmd) in runs.items()
    ]

    def parameters(result: RunResult) -> int:
        return sum(p.numel() for p in result.module.net.parameters())

    report.add(
        "### Next ideas (optional configs): dropout, batch norm, augmentation, LeNet-style CNN, OneCycle",
        f"{epochs} epochs each, SGD with batches of 128 as above, test metrics after the last epoch (every net "
        "evaluated in evaluation mode: no dropout, batch norms on their running statistics). Each idea is a "
        "config layered on the MLP config, so each row differs from the first in that one respect.",
        markdown_table(["run", "val accuracy", "test accuracy", "test loss", "fit s", "command"], rows, digits=4),
        image,
        f"OneCycle made {one_cycle.module.updates_done} updates and its schedule spans exactly that many "
        f"(total_steps {one_cycle.trainer.lr_scheduler_configs[0].scheduler.total_steps}, filled in from the run). "
        f"LeNet has {parameters(lenet_manual):,} parameters against the MLP's {parameters(constant):,}. "
        "The two LeNet runs "
        "start from the same weights and see the same batches; in float32 their final weights differ by at most "
        f"{max_weight_difference(lenet_manual, lenet_native):.2e} (rounding in different summation orders, "
        f"compounded over {lenet_manual.module.updates_done} updates); in float64, after "
        f"{lenet64[0].module.updates_done} updates, by {max_weight_difference(*lenet64):.1e}. The hand-derived "
        "convolution (im2col, models/layers/conv.py) took "
        f"{lenet_manual.seconds / lenet_native.seconds:.1f}x the autograd run's fit time: "
        "torch's own conv kernels are faster than im2col + matmul + col2im on the CPU.",
        "Batch norm (`net.batch_norm: true`) puts torch.nn.BatchNorm1d between each hidden dense layer and its "
        "ReLU; the hand-derived module's forward and backward are models/layers/batchnorm.py. In float64, after "
        f"{batch_norm64[0].module.updates_done} updates from the same start, the hand-derived and autograd "
        f"modules' weights and running statistics differ by at most {max_weight_difference(*batch_norm64):.1e} "
        "(`python train.py compare --config configs/experiments/fashion_mnist_mlp.yaml --config "
        "configs/experiments/next_ideas/batch_norm.yaml --trainer.precision 64-true` grades the whole run). "
        "Augmentation (`data.augment: true`) rotates and shifts every training image by its own draw of "
        "torchvision's v2.RandomAffine in every batch, seeded by the data seed and the update, so both modules "
        "see the same images; validation and test images are left alone. Drawing 54,000 affine transforms an "
        f"epoch made that fit {augment.seconds / constant.seconds:.1f}x as long as the plain MLP's.",
    )
