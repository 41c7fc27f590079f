"""``python train.py sweep --config configs/week04.yaml --sweep configs/sweeps/week04_grid.yaml``.

A sweep file names grid axes by the dotted keys ``--print_config`` shows, plus ``seed`` (the init
seed and the data-order seed together, as the notebooks set them), and the epochs at which every
member is evaluated::

    grid:
      model.init_args.optimizer.init_args.lr: [0.01, 0.05, 0.1, 0.2]
      model.init_args.net.hidden_sizes: [[3, 3], [5, 5], [10, 10]]
      seed: [0, 1, 2]
    snapshots: [30, 60, 100]
    max_members: 10000   # optional: members per stack, a memory budget

Every combination is a member. Members that differ only in learning rate, seeds, initialisation and
hidden widths train together in one stack (:mod:`models.sweep_module`); members that cannot share
one (another depth, activation, head, batch size or optimiser) form further stacks, run one after
another. The results table (one row per member and snapshot) is printed and written as CSV and
Markdown beside the TensorBoard logs, with a heat map of test F1 over the first two axes.
"""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from commands.frozen_gc import long_lived_objects_frozen
from commands.sweep_grid import (
    SEED_KEYS,
    LoadedData,
    Member,
    SweepError,
    build_member,
    check_axes,
    plan_stacks,
    read_sweep_file,
)
from commands.sweep_results import write_results
from commands.sweep_tensorboard import write_heat_maps, write_member_runs
from models.epoch_blocks import plan_blocks
from models.sweep_module import StackedData, SweepModule, shares_tensors, stack_loader, widest_spec
from models.tables import plain_table

BLOCK_BYTES = 64 * 2**20  # the stacked training rows of one Lightning step


def epochs_per_block(stack: list[Member], epochs: int) -> int:
    """Notebook epochs per Lightning epoch: as many whole epochs as fit a block of BLOCK_BYTES (0: an epoch does not
    fit, so the stack streams it in batches). Members that share their data and order share each block's rows."""
    data = [m.data for m in stack]
    copies = 1 if shares_tensors(data) and (len({d.seed for d in data}) == 1 or not stack[0].shuffle) else len(stack)
    x = data[0].x_train
    epoch_bytes = copies * x.numel() * x.element_size()
    return min(epochs, BLOCK_BYTES // epoch_bytes)


class WithoutBlockCount(logging.Filter):
    """Drops Lightning's "`Trainer.fit` stopped: `max_epochs=2` reached.": a stack's Trainer counts blocks of
    epochs, so beside ``--trainer.max_epochs 10000`` that line misleads; the progress bar names the blocks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("`Trainer.fit` stopped: `max_epochs=")


class StackProgressBar(TQDMProgressBar):
    """Lightning's bar, titled with the stack it trains and counting notebook epochs: a sweep's stacks (chunks of
    at most ``max_members``) each get a Trainer of their own, whose epochs are blocks of notebook epochs."""

    def __init__(self, title: str, epochs: int) -> None:
        super().__init__()
        self.title, self.epochs = title, epochs

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        if batch_idx == 0:  # after Lightning's own "Epoch <n>" label, which counts blocks from 0
            block = pl_module.plan[trainer.current_epoch]
            epochs = f"epoch {block.stop}" if len(block) == 1 else f"epochs {block.start + 1}-{block.stop}"
            self.train_progress_bar.set_description(f"{self.title}: {epochs} of {self.epochs}")

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, int | str | float]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the tail of "version_<n>/stack_<i>"; the title names the stack
        return metrics


def train_stack(
    stack: list[Member],
    epochs: int,
    snapshots: list[int],
    dtype: torch.dtype,
    logger: TensorBoardLogger,
    progress_bar: bool = True,
    hand_derived: bool = True,
    callbacks: list[pl.Callback] | None = None,
    hardware: dict[str, Any] | None = None,
    title: str = "stack",
) -> SweepModule:
    """One stack's fit. Its checkpoint (``<stack run>/checkpoints/last.ckpt``, written after every block)
    holds the stacked weights, every member's optimiser state and the results so far, so a sweep run
    again with ``--sweep.resume`` goes on from there exactly."""
    first = stack[0]
    names = [m.name for m in stack]
    lrs = [m.lr for m in stack]
    specs = [m.spec for m in stack]
    per_block = epochs_per_block(stack, epochs)
    plan = plan_blocks(0, epochs, max(per_block, 1), snapshots)
    loader = stack_loader([m.data for m in stack], first.batch_size, first.shuffle, whole_epochs=per_block > 0)
    loader.set_epochs(plan[0])  # Lightning counts the loader's batches before the first epoch starts
    module = SweepModule(
        specs, lrs, first.optimizer, first.rows_per_update, snapshots, names, plan, hand_derived, first.divergence
    )
    module.to(dtype)
    data = StackedData([m.data for m in stack], loader)
    checkpoint_dir = Path(logger.log_dir) / "checkpoints"
    last = checkpoint_dir / "last.ckpt"
    if last.is_file():
        check_same_members(last, names)
    trainer = pl.Trainer(
        max_epochs=len(plan),
        precision="64-true" if dtype == torch.float64 else "32-true",
        logger=logger,
        callbacks=[
            ModelCheckpoint(dirpath=checkpoint_dir, save_last=True, save_top_k=0),
            *([StackProgressBar(title, epochs)] if progress_bar else []),
            *(callbacks or []),
        ],
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        log_every_n_steps=1,
        **(hardware or {}),
    )
    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # as train.py's WithoutCloudTips
    block_count = WithoutBlockCount()
    lightning_log.addFilter(block_count)
    try:
        with warnings.catch_warnings():
            # The stack's optimiser is models.stacked_optim (one lr and state per member), not a torch.optim one.
            warnings.filterwarnings("ignore", message=".*configure_optimizers` returned `None`.*")
            trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    finally:
        lightning_log.removeFilter(block_count)
    return module


def check_same_members(checkpoint: Path, names: list[str]) -> None:
    """A resumed stack must be the one its checkpoint holds: same members, in the same order."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["sweep_state"]["names"]
    if saved != names:

        def preview(members: list[str]) -> str:
            return ", ".join(members) if len(members) <= 6 else f"{', '.join(members[:3])}, ... ({len(members)} in all)"

        raise SweepError(
            f"--sweep.resume: {checkpoint} holds the members {preview(saved)}, but this sweep file and config make "
            f"{preview(names)} for that stack. Resume with the sweep file and config of that run, or drop "
            "--sweep.resume to start a new sweep"
        )


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]  # one per member and snapshot
    stacks: list[tuple[list[Member], SweepModule]]
    run_dir: Path

    def member_curves(self) -> list[tuple[str, dict[str, Any], np.ndarray]]:
        """(name, axis values, train loss per epoch) of every member."""
        curves = []
        for members, module in self.stacks:
            losses = np.stack(module.train_losses)  # (epochs, M)
            curves += [(member.name, member.values, losses[:, m]) for m, member in enumerate(members)]
        return curves

    def locate(self, member_name: str) -> tuple[Member, SweepModule, int]:
        """The member of that name, the stack module that trained it, and its index in the stack."""
        for members, module in self.stacks:
            for m, member in enumerate(members):
                if member.name == member_name:
                    return member, module, m
        raise KeyError(member_name)

    def final_weights(self, member_name: str) -> list[np.ndarray]:
        """A member's weight matrices, (fan_out, fan_in) each, cut out of its stack's padding."""
        member, module, m = self.locate(member_name)
        sizes = member.spec.layer_sizes
        return [
            w[m, :fan_out, :fan_in].detach().cpu().numpy()
            for w, fan_in, fan_out in zip(module.weights, sizes[:-1], sizes[1:])
        ]

    def final_biases(self, member_name: str) -> list[np.ndarray]:
        """A member's bias vectors, (fan_out,) each, cut out of its stack's padding; empty for nets without bias."""
        member, module, m = self.locate(member_name)
        return [b[m, :fan_out].detach().cpu().numpy() for b, fan_out in zip(module.biases, member.spec.layer_sizes[1:])]


def run_sweep(
    make_cli: Callable[..., LightningCLI],
    args: list[str],
    sweep_path: str,
    save_dir: str | None = None,
    resume: str | None = None,
    callbacks: list[pl.Callback] | None = None,
) -> SweepResult:
    """Every member of the grid, trained stack by stack; logs under ``<save_dir>/<sweep name>_sweep/version_<n>``,
    ``save_dir`` being the config's logger's unless given. ``resume`` (such a run directory) goes on from each
    stack's last checkpoint there."""
    sweep = read_sweep_file(sweep_path)
    quiet = ["--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"]
    cli = make_cli([*args, *quiet], run=False, instantiate=False)  # each member's classes are built below
    save_dir = save_dir or config_save_dir(cli.config.trainer)
    grid: dict[str, list[Any]] = sweep["grid"]
    check_axes(cli, grid, sweep_path)
    loaded: dict[str, LoadedData] = {}
    members = [build_member(cli, dict(zip(grid, combo)), loaded) for combo in itertools.product(*grid.values())]
    epochs = int(cli.config.trainer.max_epochs or 1)
    snapshots = sorted({e for e in sweep["snapshots"] if e <= epochs} | {epochs})
    dtype = torch.float64 if str(cli.config.trainer.precision).startswith("64") else torch.float32
    name = f"{Path(sweep_path).stem}_sweep"
    version = resumed_version(resume) if resume else TensorBoardLogger(save_dir, name=name).version
    if resume:
        save_dir, name = str(Path(resume).parent.parent), Path(resume).parent.name
    stacks = plan_stacks(members, sweep["max_members"])
    rows: list[dict[str, Any]] = []
    trained = []
    with long_lived_objects_frozen():
        for i, stack in enumerate(stacks):
            members = f"{len(stack)} member{'s' if len(stack) != 1 else ''}"
            title = f"stack {i + 1}/{len(stacks)}: {members}, {widest_spec([m.spec for m in stack]).summary}"
            print(title, flush=True)
            logger = TensorBoardLogger(
                save_dir, name=name, version=f"version_{version}/stack_{i}", default_hp_metric=False, max_queue=10_000
            )
            progress_bar = cli.config.trainer.enable_progress_bar is not False  # None: Lightning's default, on
            module = train_stack(
                stack,
                epochs,
                snapshots,
                dtype,
                logger,
                progress_bar,
                sweep["hand_derived"],
                callbacks,
                hardware(cli),
                title,
            )
            by_name = {m.name: m for m in stack}
            rows += [{**r, "values": by_name[r["member"]].values} for r in module.results]
            trained.append((stack, module))
    return SweepResult(rows, trained, Path(save_dir) / name / f"version_{version}")


def config_save_dir(trainer: Namespace) -> str:
    """Where the config's logger writes (its ``save_dir``); else ``trainer.default_root_dir`` or ``runs``."""
    logger = trainer.logger
    init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
    return str((init_args and init_args.get("save_dir")) or trainer.default_root_dir or "runs")


def hardware(cli: LightningCLI) -> dict[str, Any]:
    """The config's accelerator, devices, nodes and strategy, for a stack's own Trainer: under DDP every
    rank trains its share of the members (a fresh strategy object per stack)."""
    config = cli.config.trainer
    strategy = config.strategy
    if not isinstance(strategy, str) and strategy is not None:  # class_path + init_args
        module_name, class_name = strategy.class_path.rsplit(".", 1)
        init_args = strategy.init_args.as_dict() if strategy.get("init_args") else {}
        strategy = getattr(importlib.import_module(module_name), class_name)(**init_args)
    return {
        "accelerator": config.accelerator,
        "devices": config.devices,
        "num_nodes": config.num_nodes,
        "strategy": strategy,
    }


def resumed_version(run_dir: str) -> int:
    """The version number of ``runs/<sweep>_sweep/version_<n>``; anything else is refused by name."""
    path = Path(run_dir)
    if not path.is_dir() or not path.name.startswith("version_") or not path.name[8:].isdigit():
        raise SweepError(
            f"--sweep.resume {run_dir}: not a sweep's run directory; pass the runs/<sweep>_sweep/version_<n> "
            "that the interrupted sweep printed"
        )
    return int(path.name[8:])


def best_member(result: SweepResult) -> str:
    """The member with the best final test F1 (or the lowest test MSE for regression), not diverged."""
    final = {row["member"]: row for row in result.rows}  # rows come in epoch order: the last one wins
    usable = [row for row in final.values() if not row["diverged"]]
    if not usable:
        raise SweepError("every member diverged: there is no best member to export")
    if "test_f1" in usable[0]:
        return max(usable, key=lambda row: row["test_f1"])["member"]
    return min(usable, key=lambda row: row["test_mse"])["member"]


def export_member(make_cli: Callable[..., LightningCLI], args: list[str], result: SweepResult, which: str) -> Path:
    """Write one member (``best`` or its name) as an ordinary checkpoint: its own single-run module and data,
    with the member's trained weights, tested once so the checkpoint carries the data's state too."""
    name = best_member(result) if which == "best" else which
    try:
        member, stacked, m = result.locate(name)
    except KeyError:
        known = ", ".join(member.name for stack, _ in result.stacks for member in stack)
        raise SweepError(f"--sweep.export {which}: no such member; use best or one of: {known}") from None
    overrides = [
        f"--{key}={json.dumps(v)}" for k, v in member.values.items() for key in (SEED_KEYS if k == "seed" else (k,))
    ]
    out = result.run_dir / "export"
    quiet = ["--trainer.logger=false", "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"]
    one_process = ["--trainer.strategy=auto", "--trainer.devices=1", "--trainer.num_nodes=1"]
    cli = make_cli([*args, *overrides, *quiet, *one_process, f"--trainer.default_root_dir={out}"], run=False)
    module = cli.model.to(torch.float64 if str(cli.trainer.precision).startswith("64") else torch.float32)
    with torch.no_grad():
        for k, layer in enumerate(module.net.layers):
            fan_out, fan_in = layer.weight.shape
            layer.weight.copy_(stacked.weights[k][m, :fan_out, :fan_in])
            if layer.bias is not None:
                layer.bias.copy_(stacked.biases[k][m, :fan_out])
    cli.trainer.test(module, datamodule=cli.datamodule, verbose=False)
    path = out / f"{name}.ckpt"
    cli.trainer.save_checkpoint(path)
    return path


def sweep_main(args: list[str], make_cli: Callable[..., LightningCLI]) -> int:
    """Entry point of ``train.py sweep``: 0 when every member trained (diverged members are warned
    about), 2 for a mistake in the sweep file."""
    if any(a in ("-h", "--help") for a in args) or "--sweep" not in args:
        print(__doc__)
        return 0 if "--sweep" in args or any(a in ("-h", "--help") for a in args) else 2
    i = args.index("--sweep")
    sweep_path, rest = args[i + 1], args[:i] + args[i + 2 :]
    options = {}
    for option in ("--sweep.export", "--sweep.resume"):
        if option in rest:
            j = rest.index(option)
            options[option], rest = rest[j + 1], rest[:j] + rest[j + 2 :]
    export = options.get("--sweep.export")
    try:
        result = run_sweep(make_cli, rest, sweep_path, resume=options.get("--sweep.resume"))
        if rank_zero_only.rank != 0:  # under DDP every rank holds the same results; rank 0 reports them
            return 0
        exported = export_member(make_cli, rest, result, export) if export else None
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows, run_dir = result.rows, result.run_dir
    columns, body, figures, drawn = write_results(run_dir, rows)
    write_heat_maps(run_dir, drawn)
    write_member_runs(run_dir, result.member_curves(), {r["member"]: r for r in rows})
    print(plain_table(columns, body))
    diverged = sorted({r["member"] for r in rows if r["diverged"]})
    if diverged:
        print(f"warning: {len(diverged)} member(s) diverged (non-finite loss) and were frozen: {', '.join(diverged)}")
    print(f"Results: {run_dir / 'results.csv'}, {run_dir / 'results.md'}; heat maps: {', '.join(map(str, figures))}")
    print(f"TensorBoard: tensorboard --logdir {run_dir}")
    if exported:
        print(
            f"Exported {exported.stem} as a checkpoint: {exported} (train.py test/predict --config ... --ckpt_path it)"
        )
    return 0
