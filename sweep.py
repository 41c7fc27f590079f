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

import copy
import importlib
import inspect
import itertools
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure

from callbacks.figures import new_figure
from models.spec import MLPSpec
from models.sweep_module import MemberData, StackedData, SweepModule, epoch_blocks
from reporting.sweep_tensorboard import write_heat_maps, write_member_runs
from reporting.tables import markdown_table, plain_table

BLOCK_BYTES = 64 * 2**20  # the stacked training rows of one Lightning step
SEED_KEYS = ("model.init_args.net.init_seed", "data.init_args.seed")
MEMBER_KEYS = ("model.", "data.")  # what a member's config may vary; the trainer is the sweep's own
OPTIMIZERS = {"torch.optim.SGD": "sgd", "torch.optim.Adam": "adam"}
OPTIMIZER_ARGS = {
    "sgd": ("momentum", "dampening", "weight_decay", "nesterov"),
    "adam": ("betas", "eps", "weight_decay"),
}


class SweepError(ValueError):
    """A mistake in the sweep file or the grid, named by key; nothing has been trained yet."""


@dataclass
class Member:
    name: str
    values: dict[str, Any]  # axis -> value
    spec: MLPSpec
    lr: float
    optimizer: tuple[str, dict[str, Any]]
    rows_per_update: int | None
    data: MemberData
    batch_size: int
    shuffle: bool

    def stack_key(self) -> str:
        """What members of one stack must share: everything but lr, seeds, init and hidden widths."""
        spec = {
            k: v
            for k, v in self.spec.__dict__.items()
            if k not in ("hidden_sizes", "init", "init_std", "init_seed", "bias_init")
        }
        spec["depth"] = len(self.spec.hidden_sizes)
        return json.dumps(
            [spec, self.optimizer, self.rows_per_update, self.batch_size, self.shuffle], sort_keys=True, default=str
        )


def read_sweep_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise SweepError(f"{path}: no such sweep file; pass --sweep configs/sweeps/<name>.yaml")
    content = yaml.safe_load(file.read_text()) or {}
    grid = content.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{path}: needs a 'grid:' mapping of dotted keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list):
            raise SweepError(f"{path}: grid key {key!r} must be a list of values, got {values!r}")
        if not values:
            raise SweepError(f"{path}: grid key {key!r} is an empty list; give it at least one value or remove it")
    snapshots = content.get("snapshots", [])
    if not isinstance(snapshots, list) or not all(isinstance(e, int) and e > 0 for e in snapshots):
        raise SweepError(f"{path}: snapshots must be a list of positive epoch numbers, got {snapshots!r}")
    gradients = content.get("gradients", "hand")
    if gradients not in ("hand", "autograd"):
        raise SweepError(f"{path}: gradients is 'hand' (hand-derived, the default) or 'autograd', got {gradients!r}")
    return {
        "grid": grid,
        "snapshots": snapshots,
        "max_members": int(content.get("max_members", 10_000)),
        "hand_derived": gradients == "hand",
        "path": path,
    }


def short_name(key: str, value: Any) -> str:
    """``model.init_args.optimizer.init_args.lr`` = 0.1 -> ``lr0.1``; hidden sizes [3, 3] -> ``h3x3``."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "class_path":  # torch.optim.Adam -> Adam
        return str(value).rsplit(".", 1)[-1]
    if leaf == "hidden_sizes":
        return "h" + "x".join(map(str, value))
    if isinstance(value, float):
        value = f"{value:g}"
    return f"{leaf}{value}"


def set_value(config: Any, key: str, value: Any) -> None:
    """``config[key] = value``; a new ``...class_path`` keeps only the ``init_args`` its class takes, as
    ``--...class_path`` on the command line does (SGD's momentum means nothing to Adam)."""
    config[key] = value
    if key.endswith(".class_path"):
        init_args = config.get(key.removesuffix("class_path") + "init_args")
        module_name, class_name = str(value).rsplit(".", 1)
        accepted = inspect.signature(getattr(importlib.import_module(module_name), class_name)).parameters
        for name in [n for n in vars(init_args or {}) if n not in accepted]:
            delattr(init_args, name)


def representatives(values: list[Any]) -> list[Any]:
    """The values whose validation stands for the whole axis: every distinct non-numeric value, and the
    smallest and largest number of each numeric type (a range constraint is checked at both ends).
    Validating a config costs about 40 ms, and an axis may hold 10,000 learning rates."""
    numbers: dict[type, list[float]] = {}
    others: list[Any] = []
    for value in values:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers.setdefault(type(value), []).append(value)
        elif value not in others:
            others.append(value)
    return others + [v for group in numbers.values() for v in dict.fromkeys([min(group), max(group)])]


def check_axes(cli: LightningCLI, grid: dict[str, list[Any]], path: str) -> None:
    """Every axis key must exist in the config and vary the model or the data, and every value must have its
    type. Trial i sets every axis to its i-th representative value at once; a failing trial is retried one
    axis at a time to name the key and value."""
    axes = {key: representatives(values) for key, values in grid.items() if key != "seed"}
    for key in axes:
        if key not in cli.config:
            raise SweepError(
                f"{path}: unknown grid key {key!r}; use the dotted keys that "
                "`python train.py fit --config ... --print_config` shows, e.g. model.init_args.optimizer.init_args.lr"
            )
        if not key.startswith(MEMBER_KEYS):
            raise SweepError(
                f"{path}: grid key {key!r} is shared by every member; a grid varies model.* and data.* keys and "
                "seed. Set it once on the command line instead (e.g. --trainer.max_epochs 100)"
            )
    for i in range(max((len(values) for values in axes.values()), default=0)):
        trial = {key: values[i % len(values)] for key, values in axes.items()}
        if validation_error(cli, trial) is None:
            continue
        for key, value in trial.items():
            error = validation_error(cli, {key: value})
            if error is not None:
                raise SweepError(f"{path}: grid key {key!r} cannot take {value!r}: {error}")
        raise SweepError(f"{path}: the values {trial} do not go together: {validation_error(cli, trial)}")


def validation_error(cli: LightningCLI, values: dict[str, Any]) -> str | None:
    """The config with ``values`` set, checked by the CLI's parser: None, or the first line of its complaint."""
    trial = copy.deepcopy(cli.config)
    for key, value in values.items():
        set_value(trial, key, value)
    try:
        cli.parser.validate(trial)
    except Exception as error:  # jsonargparse reports type errors as plain exceptions
        return str(error).strip().splitlines()[-1].strip()
    return None


@dataclass
class LoadedData:
    data: MemberData
    batch_size: int
    shuffle: bool


def load_data(config: Namespace, loaded: dict[str, LoadedData]) -> LoadedData:
    """The member's DataModule, read once per distinct data config: members that differ only in the model
    (an lr or width grid) share the same tensors."""
    key = json.dumps(config.as_dict(), sort_keys=True, default=str)
    if key not in loaded:
        module_name, class_name = config.class_path.rsplit(".", 1)
        datamodule = getattr(importlib.import_module(module_name), class_name)(**config.init_args.as_dict())
        datamodule.setup("fit")
        x_train, y_train = datamodule.tensors("train")[:2]
        x_test, y_test = datamodule.tensors("test")[:2]
        data = MemberData(x_train, y_train, x_test, y_test, seed=int(datamodule.seed))
        loaded[key] = LoadedData(data, int(datamodule.batch_size), bool(datamodule.shuffle))
    return loaded[key]


def build_member(cli: LightningCLI, values: dict[str, Any], loaded: dict[str, LoadedData]) -> Member:
    config = Namespace(model=copy.deepcopy(cli.config.model), data=copy.deepcopy(cli.config.data))
    for key, value in values.items():
        for target in SEED_KEYS if key == "seed" else (key,):
            set_value(config, target, value)
    model = config.model.init_args
    spec = MLPSpec(**model.net.as_dict())
    optimizer_path = model.optimizer.class_path if model.optimizer else "torch.optim.SGD"
    if optimizer_path not in OPTIMIZERS:
        raise SweepError(f"the sweep trains SGD and Adam; model.init_args.optimizer is {optimizer_path}")
    kind = OPTIMIZERS[optimizer_path]
    optimizer_args = model.optimizer.init_args.as_dict() if model.optimizer else {"lr": 0.1}
    if spec.dropout or spec.conv_channels or model.lr_scheduler:
        raise SweepError("the sweep stacks dense nets without dropout, conv layers or lr schedules")
    data = load_data(config.data, loaded)
    return Member(
        name="-".join(short_name(k, v) for k, v in values.items()),
        values=values,
        spec=spec,
        lr=float(optimizer_args["lr"]),
        optimizer=(kind, {k: optimizer_args[k] for k in OPTIMIZER_ARGS[kind] if k in optimizer_args}),
        rows_per_update=model.rows_per_update,
        data=data.data,
        batch_size=data.batch_size,
        shuffle=data.shuffle,
    )


def plan_stacks(members: list[Member], max_members: int) -> list[list[Member]]:
    groups: dict[str, list[Member]] = {}
    for member in members:
        groups.setdefault(member.stack_key(), []).append(member)
    return [group[i : i + max_members] for group in groups.values() for i in range(0, len(group), max_members)]


def epochs_per_step(stack: list[Member], epochs: int) -> int:
    """Notebook epochs per Lightning step: as many as fit a stacked block of BLOCK_BYTES."""
    x = stack[0].data.x_train
    epoch_bytes = len(stack) * x.numel() * 8
    return max(1, min(epochs, BLOCK_BYTES // epoch_bytes))


class StackProgressBar(TQDMProgressBar):
    """Lightning's bar, titled with the stack it trains: a sweep's stacks (chunks of at most ``max_members``)
    each get a Trainer of their own, so the bar says which chunk of how many is running."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)  # Lightning titles the bar "Epoch <n>": a block here
        self.train_progress_bar.set_description(f"{self.title}, block {trainer.current_epoch + 1}/{trainer.max_epochs}")

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
    module = SweepModule(specs, lrs, first.optimizer, first.rows_per_update, snapshots, names, epochs, hand_derived)
    module.to(dtype)
    blocks = epoch_blocks(epochs, epochs_per_step(stack, epochs), snapshots)
    data = StackedData([m.data for m in stack], first.batch_size, first.shuffle, blocks)
    checkpoint_dir = Path(logger.log_dir) / "checkpoints"
    last = checkpoint_dir / "last.ckpt"
    trainer = pl.Trainer(
        max_epochs=len(blocks),
        precision="64-true" if dtype == torch.float64 else "32-true",
        logger=logger,
        callbacks=[
            ModelCheckpoint(dirpath=checkpoint_dir, save_last=True, save_top_k=0),
            *([StackProgressBar(title)] if progress_bar else []),
            *(callbacks or []),
        ],
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        log_every_n_steps=1,
        **(hardware or {}),
    )
    with warnings.catch_warnings():
        # The stack's optimiser is models.stacked_optim (one lr and state per member), not a torch.optim one.
        warnings.filterwarnings("ignore", message=".*configure_optimizers` returned `None`.*")
        trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    return module


CLASSIFICATION_COLUMNS = ["test_accuracy", "test_precision", "test_recall", "test_f1"]


def results_table(rows: list[dict[str, Any]], axes: list[str]) -> tuple[list[str], list[list[str]]]:
    """One row per member and snapshot: its axis values, losses and test figures, and flags."""
    classifier = bool(rows) and "test_f1" in rows[0]
    figures = ["train_loss", "test_loss", *(CLASSIFICATION_COLUMNS if classifier else ["test_mse"])]
    flags = ["collapsed", "diverged"] if classifier else ["diverged"]
    columns = ["member", *(a.rsplit(".", 1)[-1] for a in axes), "epoch", *figures, *flags]
    body = []
    for row in rows:
        values = [row["member"], *(json.dumps(row["values"][a]) for a in axes), str(row["epoch"])]
        values += [f"{row[k]:.6g}" for k in figures] + ["yes" if row[k] else "no" for k in flags]
        body.append(values)
    return columns, body


def main_metric(rows: list[dict[str, Any]]) -> str:
    return "test_f1" if rows and "test_f1" in rows[0] else "test_mse"


def heat_map(rows: list[dict[str, Any]], axes: list[str], epoch: int, path: Path) -> Figure:
    """Mean test F1 (or test MSE for regression), over the other axes, on a grid of the first two axes."""
    metric = main_metric(rows)
    first, second = axes[0], axes[1] if len(axes) > 1 else None
    xs = list(dict.fromkeys(json.dumps(r["values"][first]) for r in rows))
    ys = list(dict.fromkeys(json.dumps(r["values"][second]) for r in rows)) if second else [""]
    grid = np.full((len(ys), len(xs)), np.nan)
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            f1 = [
                r[metric]
                for r in rows
                if r["epoch"] == epoch
                and json.dumps(r["values"][first]) == x
                and (not second or json.dumps(r["values"][second]) == y)
            ]
            grid[j, i] = np.mean(f1) if f1 else np.nan
    figure = new_figure(1.2 * len(xs) + 2.5, 0.8 * len(ys) + 2.0)
    ax = figure.add_subplot(1, 1, 1)
    limits = {"vmin": 0, "vmax": 1} if metric == "test_f1" else {}
    image = ax.imshow(grid, cmap="viridis", origin="lower", **limits)
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(first)
    ax.set_ylabel(second or "")
    for (j, i), value in np.ndenumerate(grid):
        ax.text(i, j, f"{value:.3g}", ha="center", va="center", color="w")
    ax.set_title(f"{'test macro F1' if metric == 'test_f1' else 'test MSE'} at epoch {epoch}")
    figure.colorbar(image)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return figure


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

    def final_weights(self, member_name: str) -> list[np.ndarray]:
        """A member's weight matrices, (fan_out, fan_in) each, cut out of its stack's padding."""
        for members, module in self.stacks:
            for m, member in enumerate(members):
                if member.name == member_name:
                    sizes = member.spec.layer_sizes
                    return [
                        w[m, :fan_out, :fan_in].detach().cpu().numpy()
                        for w, fan_in, fan_out in zip(module.weights, sizes[:-1], sizes[1:])
                    ]
        raise KeyError(member_name)


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
    cli = make_cli([*args, "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"], run=False)
    save_dir = save_dir or getattr(cli.trainer.logger, "save_dir", None) or "runs"
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
    for i, stack in enumerate(stacks):
        title = f"stack {i + 1}/{len(stacks)}: {len(stack)} members, {stack[0].spec.summary}"
        print(title, flush=True)
        logger = TensorBoardLogger(
            save_dir, name=name, version=f"version_{version}/stack_{i}", default_hp_metric=False, max_queue=10_000
        )
        progress_bar = cli.config.trainer.enable_progress_bar is not False  # None: Lightning's default, on
        module = train_stack(
            stack, epochs, snapshots, dtype, logger, progress_bar, sweep["hand_derived"], callbacks, hardware(cli), title
        )
        by_name = {m.name: m for m in stack}
        rows += [{**r, "values": by_name[r["member"]].values} for r in module.results]
        trained.append((stack, module))
    return SweepResult(rows, trained, Path(save_dir) / name / f"version_{version}")


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
    found = [
        (member, module, m) for stack, module in result.stacks for m, member in enumerate(stack) if member.name == name
    ]
    if not found:
        known = ", ".join(member.name for stack, _ in result.stacks for member in stack)
        raise SweepError(f"--sweep.export {which}: no such member; use best or one of: {known}")
    ((member, stacked, m),) = found
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
    axes = list(rows[0]["values"]) if rows else []
    columns, body = results_table(rows, axes)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.md").write_text(markdown_table(columns, body) + "\n")
    with open(run_dir / "results.csv", "w") as f:
        f.write(",".join(columns) + "\n" + "\n".join(",".join(r) for r in body) + "\n")
    figures, drawn = [], {}
    for epoch in sorted({r["epoch"] for r in rows}):
        path = run_dir / f"{main_metric(rows)}_heat_map_epoch{epoch}.png"
        drawn[epoch] = heat_map(rows, axes, epoch, path)
        figures.append(path)
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
