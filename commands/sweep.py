"""``python train.py sweep --config configs/week04.yaml --sweep configs/sweeps/week04_grid.yaml``.

A sweep file names grid axes by the dotted keys ``--print_config`` shows, plus ``seed`` (the init seed
and the data-order seed together), and the epochs at which every member is evaluated::

    grid:
      model.init_args.optimizer.init_args.lr: [0.01, 0.05, 0.1, 0.2]
      model.init_args.net.hidden_sizes: [[3, 3], [5, 5], [10, 10]]
      seed: [0, 1, 2]
    snapshots: [30, 60, 100]
    max_members: 10000   # optional: members per stack, a memory budget

Every combination is a member. Members that differ only in learning rate, seeds, initialisation and
hidden widths train together in one stack (:mod:`models.sweep_module`); members that cannot share
one (another depth, activation, head, batch size or optimiser) form further stacks, run one after
another (:mod:`commands.sweep_stack`). The sweep's options are the CLI's own ``--sweep.*`` options
(:class:`commands.sweep_grid.SweepOptions`); the config's ``trainer.*`` settings are honoured or refused by name
(:mod:`commands.sweep_trainer`). Each stack's memory is planned before anything trains, and a stack that would not fit
is refused (:mod:`commands.sweep_memory`). The results go to ``results.csv`` (every member and snapshot), the terminal
and ``results.md`` (:mod:`commands.sweep_results`), one figure that fits the grid (:mod:`commands.sweep_figures`) and
TensorBoard (:mod:`commands.sweep_tensorboard`), each sized by the grid.
"""

from __future__ import annotations

import itertools
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from commands.frozen_gc import long_lived_objects_frozen
from commands.sweep_figures import grid_figures
from commands.sweep_grid import (
    SEED_KEYS,
    LoadedData,
    Member,
    SweepError,
    build_member,
    check_axes,
    check_grid,
    check_sweep_file,
    chunked,
    stack_groups,
    sweep_file_argument,
)
from commands.sweep_memory import available_bytes, check_memory, local_processes
from commands.sweep_results import write_results
from commands.sweep_stack import train_stack
from commands.sweep_tensorboard import members_with_runs, write_grid_run, write_member_runs
from commands.sweep_trainer import sweep_callbacks, trainer_settings
from models.sweep_module import SweepModule, widest_spec

DIVERGED_NAMED = 10  # diverged members named on the terminal; results.csv flags every one


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]  # one per member and snapshot
    stacks: list[tuple[list[Member], SweepModule]]
    run_dir: Path
    export: str | None = None  # --sweep.export: a member to write as an ordinary checkpoint

    def member_curves(self, names: set[str] | None = None) -> list[tuple[str, dict[str, Any], np.ndarray]]:
        """(name, axis values, train loss per epoch) of every member, or of those ``names``."""
        curves = []
        for members, module in self.stacks:
            losses = np.stack(module.train_losses)  # (epochs, M)
            curves += [
                (member.name, member.values, losses[:, m])
                for m, member in enumerate(members)
                if names is None or member.name in names
            ]
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
    sweep_path: str | None = None,
    save_dir: str | None = None,
    resume: str | None = None,
    callbacks: list[pl.Callback] | None = None,
) -> SweepResult:
    """Every member of the grid, trained stack by stack; logs under ``<save_dir>/<sweep name>_sweep/version_<n>``,
    ``save_dir`` being the config's logger's unless given. ``args`` are the command's (``--sweep`` options
    included); ``sweep_path`` and ``resume`` add ``--sweep`` and ``--sweep.resume`` for in-process callers."""
    extra = [*([f"--sweep={sweep_path}"] if sweep_path else []), *([f"--sweep.resume={resume}"] if resume else [])]
    file = sweep_file_argument([*args, *extra])
    if file is not None:
        check_sweep_file(file)
    cli = make_cli([*args, *extra], run=False, instantiate=False, command="sweep")  # members' classes: below
    options: Namespace = cli.config.sweep
    path = options.get("__path__")
    where = str(path) if path else "--sweep"
    check_grid(options.grid, where)
    settings = trainer_settings(cli.config.trainer, cli.parser.get_defaults().trainer)
    member_callbacks = sweep_callbacks(cli.config.trainer.callbacks)
    save_dir = save_dir or config_save_dir(cli.config.trainer)
    grid: dict[str, list[Any]] = options.grid
    check_axes(cli, grid, where)
    loaded: dict[str, LoadedData] = {}
    members = [build_member(cli, dict(zip(grid, combo)), loaded) for combo in itertools.product(*grid.values())]
    epochs = int(cli.config.trainer.max_epochs or 1)
    snapshots = sorted({e for e in options.snapshots if e <= epochs} | {epochs})
    dtype = torch.float64 if str(cli.config.trainer.precision).startswith("64") else torch.float32
    name = f"{Path(str(path)).stem if path else 'grid'}_sweep"
    version = resumed_version(options.resume) if options.resume else TensorBoardLogger(save_dir, name=name).version
    if options.resume:
        save_dir, name = str(Path(options.resume).parent.parent), Path(options.resume).parent.name
    run_dir = Path(save_dir) / name / f"version_{version}"
    kept = [a for a in [*args, *extra] if not a.startswith("--sweep.resume")]
    resume_command = shlex.join(["python", "train.py", "sweep", *kept, f"--sweep.resume={run_dir}"])
    groups = stack_groups(members)
    stacks = chunked(groups, options.max_members)
    checkpoints = settings.get("enable_checkpointing", True) is not False
    processes = local_processes(cli.config.trainer.devices, cli.config.trainer.strategy)
    plan = check_memory(groups, stacks, epochs, len(snapshots), dtype, checkpoints, processes, available_bytes())
    if rank_zero_only.rank == 0:
        print("\n".join(plan), flush=True)
    rows: list[dict[str, Any]] = []
    trained = []
    with long_lived_objects_frozen():
        for i, stack in enumerate(stacks):
            count = f"{len(stack)} member{'s' if len(stack) != 1 else ''}"
            title = f"stack {i + 1}/{len(stacks)}: {count}, {widest_spec([m.spec for m in stack]).summary}"
            print(title, flush=True)
            logger = TensorBoardLogger(
                save_dir, name=name, version=f"version_{version}/stack_{i}", default_hp_metric=False, max_queue=10_000
            )
            module = train_stack(
                stack,
                epochs,
                snapshots,
                dtype,
                logger,
                settings,
                member_callbacks,
                resume_command,
                options.gradients == "hand",
                callbacks,
                title,
            )
            by_name = {m.name: m for m in stack}
            rows += [{**r, "values": by_name[r["member"]].values} for r in module.results]
            trained.append((stack, module))
    return SweepResult(rows, trained, run_dir, options.export)


def config_save_dir(trainer: Namespace) -> str:
    """Where the config's logger writes (its ``save_dir``); else ``trainer.default_root_dir`` or ``runs``."""
    logger = trainer.logger
    init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
    return str((init_args and init_args.get("save_dir")) or trainer.default_root_dir or "runs")


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
    about), 2 for a mistake in the sweep file, the grid or the trainer settings."""
    if not any(a == "--sweep" or a.startswith(("--sweep=", "--sweep.grid")) for a in args) and not help_asked(args):
        print("error: train.py sweep needs a sweep file: --sweep configs/sweeps/<grid>.yaml", file=sys.stderr)
        return 2
    try:
        result = run_sweep(make_cli, args)
        if rank_zero_only.rank != 0:  # under DDP every rank holds the same results; rank 0 reports them
            return 0
        exported = None
        if result.export:
            exported = export_member(make_cli, without_sweep_options(args), result, result.export)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(result, exported)
    return 0


def help_asked(args: list[str]) -> bool:
    return any(a in ("-h", "--help") for a in args)


def without_sweep_options(args: list[str]) -> list[str]:
    """The command's arguments less its ``--sweep`` options: what a member's own ``fit`` takes."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--sweep" or (arg.startswith("--sweep.") and "=" not in arg):
            skip = True
            continue
        if arg.startswith(("--sweep=", "--sweep.")):
            continue
        kept.append(arg)
    return kept


def report(result: SweepResult, exported: Path | None) -> None:
    """The results on the terminal and in files, and where each went."""
    rows, run_dir = result.rows, result.run_dir
    print(write_results(run_dir, rows))
    figures = grid_figures(rows)
    for grid_figure in figures:
        grid_figure.figure.savefig(run_dir / f"{grid_figure.name}.png", dpi=100, bbox_inches="tight")
    write_grid_run(run_dir, rows, figures)
    with_runs = members_with_runs(rows)
    write_member_runs(run_dir, result.member_curves(with_runs), {r["member"]: r for r in rows})
    diverged = sorted({r["member"] for r in rows if r["diverged"]})
    if diverged:
        named = ", ".join(diverged[:DIVERGED_NAMED]) + (", ..." if len(diverged) > DIVERGED_NAMED else "")
        print(f"warning: {len(diverged)} member(s) diverged and were frozen: {named} (flagged in results.csv)")
    pngs = "".join(f", {run_dir / f'{f.name}.png'}" for f in figures)
    print(f"Results: {run_dir / 'results.csv'} (every member and snapshot), {run_dir / 'results.md'}{pngs}")
    members = len({r["member"] for r in rows})
    runs = "every member's run" if len(with_runs) == members else f"the {len(with_runs)} best members' runs"
    print(f"TensorBoard: tensorboard --logdir {run_dir} (the grid as a whole, and {runs} under members/)")
    if exported:
        print(
            f"Exported {exported.stem} as a checkpoint: {exported} (train.py test/predict --config ... --ckpt_path it)"
        )
