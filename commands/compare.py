"""``python train.py compare --config configs/week04.yaml [overrides]``: hand-derived vs autograd.

Builds the config twice, once with ``models.ManualModule`` and once with ``models.NativeModule``,
fits and tests each with its own Trainer (same seed, same initial weights, same data order), then
prints the notebook's side-by-side table, both confusion matrices, both final weights and the
largest weight difference, absolute and relative to max(|w|, 1), the relative one graded against 1e-9 in
float64. Both runs log under one parent directory (``<save_dir>/<name>_compare/version_<n>/{manual,native}``),
so TensorBoard overlays their curves.

A run that diverges (a non-finite loss or weight) does not stop the other: both are reported, with where they
diverged. Exit status: 0 on PASS; 1 on FAIL (the weights differ, or only one run diverged: the gradients
disagree); 2 when both runs diverged, a setting to change like the other usage errors.

``--twin_start torch`` starts the autograd twin as the week-4 notebook's PyTorch run starts: torch's default
initialisation under ``torch.manual_seed(<seed_everything>)`` and a ``torch.randperm`` order every epoch
(:mod:`callbacks.torch_start`), while the hand-derived run keeps the config's start. The two runs are then
different trainings: the report shows both runs' P/R/F1, confusion matrices and weights, gives no
weight-equality verdict, and exits 0 when both trained (2 if either diverged). ``--twin_start same`` (the
default) is the check above.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from callbacks.figures import loss_comparison_figure
from callbacks.tensorboard_compare import write_comparison
from callbacks.tensorboard_dashboard import TensorBoardDashboard, tensorboard_command
from callbacks.tensorboard_logger import EpochTensorBoardLogger
from callbacks.torch_start import TorchStart
from callbacks.weights_export import format_weights, notebook_weights
from commands.errors import USAGE_ERROR_STATUS
from models.console import detail, say
from models.lightning_modules import DivergenceError, MLPModule
from models.tables import confusion_table, markdown_table, plain_table

MODELS = {"manual": "models.ManualModule", "native": "models.NativeModule"}
FLOAT64_TOLERANCE = 1e-9
FLOAT32_TOLERANCE = 1e-4


class RunRecorder(pl.Callback):
    """Keeps what the comparison checks and prints: the weights training starts from, epoch 1's input
    order, and the test confusion matrix the module's torchmetrics counted."""

    def __init__(self) -> None:
        self.initial: dict[str, Tensor] = {}
        self.first_epoch_inputs: list[Tensor] = []
        self.test_confusion: np.ndarray | None = None
        self.epoch_weights: list[dict[str, Tensor]] = []  # the net's weights at start and after each epoch

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.initial = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.epoch_weights = [self._net_weights(pl_module)]

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_weights.append(self._net_weights(pl_module))

    @staticmethod
    def _net_weights(pl_module: pl.LightningModule) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.current_epoch == 0:
            self.first_epoch_inputs.append(batch[0].detach())

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Callbacks run before the module's own hook, which resets the metric after its report."""
        metric = getattr(pl_module, "test_confusion", None)
        if metric is not None and metric.update_count > 0:
            self.test_confusion = metric.compute().cpu().numpy()  # on every rank: it syncs across DDP ranks


@dataclass
class ModelRun:
    label: str
    module: MLPModule
    trainer: pl.Trainer
    metrics: dict[str, float]
    confusion: np.ndarray | None
    seconds: float
    recorder: RunRecorder
    step_losses: list[float] = field(default_factory=list)
    diverged: DivergenceError | None = None  # the fit stopped on a non-finite loss or weight; no test was run


@dataclass
class Comparison:
    runs: dict[str, ModelRun]
    max_weight_diff: float
    max_relative_diff: float  # |w_manual - w_native| / max(|w_manual|, |w_native|, 1): what is graded
    tolerance: float
    passed: bool
    same_start: bool
    same_order: bool
    run_dir: Path
    twin_start: str = "same"  # "torch": the twin started as a plain PyTorch script does; no weight verdict


def next_version(root: Path) -> int:
    taken = [int(p.name.split("_")[1]) for p in root.glob("version_*") if p.name.split("_")[1].isdigit()]
    return max(taken, default=-1) + 1


def compare_logger(cli: LightningCLI, version: int | None) -> TensorBoardLogger:
    """A TensorBoardLogger under ``<save_dir>/<name>_compare``; both runs share one version directory."""
    configured = cli.trainer.logger
    save_dir = getattr(configured, "save_dir", None) or "runs"
    name = f"{getattr(configured, 'name', None) or 'lightning_logs'}_compare"
    if version is None:
        version = next_version(Path(save_dir) / name)
    return EpochTensorBoardLogger(save_dir, name=name, version=f"version_{version}", default_hp_metric=False)


def fit_and_test(
    make_cli: Callable[..., LightningCLI],
    args: list[str],
    label: str,
    parent: TensorBoardLogger | None,
    twin_start: str = "same",
):
    cli = make_cli([*args, "--model", MODELS[label]], run=False, command="compare")
    if label == "native" and twin_start == "torch":
        seed = cli.config.get("seed_everything")
        seed = cli.model.spec.init_seed if isinstance(seed, bool) or seed is None else int(seed)
        cli.trainer.callbacks.insert(0, TorchStart(seed))  # first: the weights export records this start
    parent = parent or compare_logger(cli, None)
    cli.trainer.logger = EpochTensorBoardLogger(
        parent.save_dir, name=parent.name, version=f"{parent.version}/{label}", default_hp_metric=False
    )
    cli.check_before_run("fit")  # data and settings checked, and the run's folder planned, before anything is written
    cli.model.show_test_report = False  # the comparison shows both runs' reports side by side
    recorder = RunRecorder()
    cli.trainer.callbacks.append(recorder)
    dashboards = [c for c in cli.trainer.callbacks if isinstance(c, TensorBoardDashboard)]
    for dashboard in dashboards:
        dashboard.print_command = False  # the report prints one command for both runs
    start = time.perf_counter()
    diverged = None
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    except DivergenceError as error:  # the other module still runs: where each diverged is evidence too
        diverged = error
    seconds = time.perf_counter() - start
    metrics = {} if diverged else cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    run = ModelRun(
        label=label,
        module=cli.model,
        trainer=cli.trainer,
        metrics={k: float(v) for k, v in metrics.items()},
        confusion=recorder.test_confusion,
        seconds=seconds,
        recorder=recorder,
        step_losses=dashboards[0].update_losses if dashboards else [],
        diverged=diverged,
    )
    return run, parent


def max_difference(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def max_relative_difference(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    """The largest |a - b| / max(|a|, |b|, 1): the absolute difference for weights up to 1 in size, relative
    beyond, so two runs that both grew to 1e112 are judged by their rounding, not by the size of their weights."""

    def relative(x: Tensor, y: Tensor) -> Tensor:
        x, y = x.double(), y.double()
        return (x - y).abs() / torch.maximum(x.abs(), y.abs()).clamp(min=1.0)

    return max(relative(a[k], b[k]).max().item() for k in a)


def compare(make_cli: Callable[..., LightningCLI], args: list[str], twin_start: str | None = None) -> Comparison:
    """Fit and test both modules from the same config; the result says whether their weights agree
    (``twin_start="torch"``: the twin starts from PyTorch's own weights and order, and nothing is graded)."""
    if twin_start is None:
        twin_start = make_cli(args, run=False, instantiate=False, command="compare").config.twin_start
    runs: dict[str, ModelRun] = {}
    parent = None
    for label in MODELS:
        runs[label], parent = fit_and_test(make_cli, args, label, parent, twin_start)
    manual, native = runs["manual"], runs["native"]
    weights = {label: run.module.net.state_dict() for label, run in runs.items()}
    diff = max_difference(weights["manual"], weights["native"])
    relative = max_relative_difference(weights["manual"], weights["native"])
    float64 = all(p.dtype == torch.float64 for p in manual.module.parameters())
    tolerance = FLOAT64_TOLERANCE if float64 else FLOAT32_TOLERANCE
    same_start = max_difference(manual.recorder.initial, native.recorder.initial) == 0.0
    inputs = [torch.cat(run.recorder.first_epoch_inputs) for run in runs.values()]
    same_order = inputs[0].shape == inputs[1].shape and torch.equal(*inputs)
    diverged = any(run.diverged for run in runs.values())
    graded = twin_start == "same"
    result = Comparison(
        runs,
        diff,
        relative,
        tolerance,
        not diverged and (not graded or (relative <= tolerance and same_start and same_order)),
        same_start,
        same_order,
        Path(parent.log_dir),
        twin_start,
    )
    if manual.trainer.is_global_zero and not diverged:  # no test metrics to tabulate after a divergence
        write_outputs(result)
    return result


def side_by_side_rows(result: Comparison) -> list[dict[str, str]]:
    return [
        {
            "model": run.module.display_name,
            "precision": f"{run.metrics['test/precision']:.6f}",
            "recall": f"{run.metrics['test/recall']:.6f}",
            "f1": f"{run.metrics['test/f1']:.6f}",
        }
        for run in result.runs.values()
    ]


def verdict(result: Comparison) -> str:
    if result.twin_start == "torch":
        return (
            "No weight-equality verdict (--twin_start torch): the autograd twin started from PyTorch's own "
            "initialisation and data order, as the notebook's torch run does, so the two runs are different "
            f"trainings; their final weights lie up to {result.max_weight_diff:.3g} apart. Both trained to the end."
        )
    kind = "float64" if result.tolerance == FLOAT64_TOLERANCE else "float32"
    word = "PASS" if result.passed else "FAIL"
    diff, relative = result.max_weight_diff, result.max_relative_diff
    line = (
        f"{word}: largest |w_manual - w_autograd| = {diff:.3e}, relative to max(|w|, 1) = {relative:.3e} "
        f"(tolerance {result.tolerance:g} on the relative difference, {kind})"
    )
    if not result.same_start:
        line += "; FAIL: the runs did not start from identical weights"
    if not result.same_order:
        line += "; FAIL: the runs did not see the same data order"
    if kind == "float32" and relative > result.tolerance and result.same_start and result.same_order:
        line += (
            "; float32 rounding differs between the two gradient computations and compounds over many updates "
            "(ReLU and max-pool decisions can flip): rerun with --trainer.precision 64-true for a weight-level check"
        )
    return line


def format_confusions(result: Comparison) -> str:
    """The runs' confusion matrices side by side, each under its model's name."""
    blocks = [
        [run.module.display_name, *confusion_table(run.confusion).splitlines()]
        for run in result.runs.values()
        if run.confusion is not None
    ]
    column = max((len(line) for lines in blocks for line in lines), default=0) + 4
    return "\n".join("".join(f"{line:<{column}}" for line in row).rstrip() for row in zip(*blocks))


def format_table(rows: list[dict[str, str]]) -> str:
    return plain_table(list(rows[0]), [list(r.values()) for r in rows])


def markdown_comparison(rows: list[dict[str, str]]) -> str:
    return markdown_table(list(rows[0]), [list(r.values()) for r in rows])


def divergence_verdict(result: Comparison) -> str:
    """Where each run diverged and what that says about the two gradient computations."""
    diverged = {run.module.display_name: run.diverged for run in result.runs.values() if run.diverged}
    where = "; ".join(f"{name} at update {error.update} (epoch {error.epoch})" for name, error in diverged.items())
    if len(diverged) < len(result.runs) and result.twin_start == "torch":
        (finished,) = (run.module.display_name for run in result.runs.values() if not run.diverged)
        return (
            f"only one run diverged: {where}, while {finished} trained to the end. The runs started apart "
            "(--twin_start torch), so this says nothing about the gradients: lower "
            "model.init_args.optimizer.init_args.lr or normalise the features (data.normalize), and compare again."
        )
    if len(diverged) < len(result.runs):
        (finished,) = (run.module.display_name for run in result.runs.values() if not run.diverged)
        return (
            f"FAIL: only one run diverged: {where}, while {finished} trained to the end with finite weights. "
            "From the same weights, data and order, the two gradient computations disagree."
        )
    updates = {error.update for error in diverged.values()}
    same = (
        "at the same update, as two agreeing gradient computations do"
        if len(updates) == 1
        else "at different updates: agreeing gradients overflow at the same update, so they may disagree"
    )
    return (
        f"both runs diverged, {same}: {where}. There are no final weights to compare: lower "
        "model.init_args.optimizer.init_args.lr, normalise the features (data.normalize) or clip the gradients, "
        "and compare again."
    )


def predicted_counts(result: Comparison) -> str:
    """Predictions per class, as the notebook prints them: the confusion matrices' column sums."""
    counts = [
        f"{run.module.display_name} {dict(enumerate(run.confusion.sum(0).tolist()))}"
        for run in result.runs.values()
        if run.confusion is not None
    ]
    return f"Predicted class counts: {'; '.join(counts)}" if counts else ""


def final_weights(result: Comparison) -> str:
    """Both runs' final weights, for ``--verbose``; their files are named as each run ends."""
    return "\n\n".join(
        f"Final weights, {run.module.display_name}:\n{format_weights(notebook_weights(run.module))}"
        for run in result.runs.values()
    )


def report(result: Comparison) -> str:
    manual, native = result.runs["manual"], result.runs["native"]
    if any(run.diverged for run in result.runs.values()):
        return "\n".join(
            [
                "Hand-derived (manual) vs autograd (native): one config, two Trainers",
                *(f"  {run.diverged}" for run in result.runs.values() if run.diverged),
                "",
                divergence_verdict(result),
                f"TensorBoard (both runs, up to where they stopped): tensorboard --logdir {result.run_dir}",
            ]
        )
    steps = manual.module.updates_done
    yes = {True: "yes", False: "NO"}
    if result.twin_start == "torch":
        seed = next(c.seed for c in native.trainer.callbacks if isinstance(c, TorchStart))
        start = (
            f"  autograd twin: PyTorch's own start (--twin_start torch): torch.manual_seed({seed}), torch's default "
            "layer initialisation, torch.randperm order every epoch\n"
            f"  hand-derived run: the config's start; identical initial weights: {yes[result.same_start].lower()}, "
            f"identical data order (epoch 1): {yes[result.same_order].lower()} (different by design)"
        )
    else:
        start = (
            f"  identical initial weights: {yes[result.same_start]}; "
            f"identical data order (epoch 1): {yes[result.same_order]}"
        )
    sections = [
        "Hand-derived (manual) vs autograd (native): one config, two Trainers",
        f"  {manual.module.epochs_done} epochs, {steps} updates each, precision {manual.trainer.precision}",
        start,
        "",
        format_table(side_by_side_rows(result)),
        "",
        "Test confusion matrices (rows: true class, columns: predicted class):",
        format_confusions(result),
        predicted_counts(result),
        "",
        verdict(result),
        f"Fit wall time: manual {manual.seconds:.1f} s, native {native.seconds:.1f} s",
        f"Table: {result.run_dir / 'comparison.csv'} (and .md)",
        f"TensorBoard (both runs, every point): {tensorboard_command(str(result.run_dir), len(manual.step_losses))}",
    ]
    return "\n".join(sections)


def write_outputs(result: Comparison) -> None:
    """The side-by-side table (CSV + markdown) in the parent directory; the weight difference per epoch,
    the overlaid loss curves and the chart layout in the manual run (the parent holds no run)."""
    run_dir = result.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = side_by_side_rows(result)
    with (run_dir / "comparison.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    markdown = f"{markdown_comparison(rows)}\n\n{verdict(result)}\n"
    (run_dir / "comparison.md").write_text(markdown)
    manual, native = result.runs["manual"], result.runs["native"]
    differences = [max_difference(a, b) for a, b in zip(manual.recorder.epoch_weights, native.recorder.epoch_weights)]
    curves = {run.module.display_name: run.step_losses for run in result.runs.values() if run.step_losses}
    figure = None
    if len(curves) == 2:
        steps_per_epoch = len(next(iter(curves.values()))) // max(manual.trainer.current_epoch, 1)
        figure = loss_comparison_figure(curves, steps_per_epoch, "Training loss per update: manual vs autograd")
    write_comparison(Path(manual.trainer.log_dir), differences, markdown, figure, manual.module.spec.is_classifier)


def compare_main(args: list[str], make_cli: Callable[..., LightningCLI]) -> int:
    """Entry point of ``train.py compare``; the exit code is 0 on PASS, 1 on FAIL, 2 when both runs diverged
    (with ``--twin_start torch``: 0 when both trained, 2 when either diverged)."""
    if any(a in ("-h", "--help") for a in args):
        make_cli(args, run=False, command="compare")  # LightningCLI prints every option, compare's own among them
    result = compare(make_cli, args)
    twin_start = result.twin_start
    if result.runs["manual"].trainer.is_global_zero:
        if not any(run.diverged for run in result.runs.values()):
            detail(final_weights(result))
        say(report(result))
    diverged = [run.diverged for run in result.runs.values()]
    if all(diverged) or (twin_start == "torch" and any(diverged)):
        return USAGE_ERROR_STATUS
    return 0 if result.passed else 1
