"""What a sweep file asks for: its grid checked against the config, and one :class:`Member` per combination.

A sweep file names grid axes by the dotted keys ``--print_config`` shows, plus ``seed`` (the init seed
and the data-order seed together), the snapshot epochs and ``max_members`` (see :mod:`commands.sweep`); the CLI's
own parser reads it as the ``--sweep`` options (:class:`SweepOptions`).
Members that can share a stack are grouped by :func:`stack_groups` and cut into stacks by :func:`chunked`.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonargparse import Namespace
from jsonargparse.typing import PositiveInt
from lightning.pytorch.cli import LightningCLI

from commands.errors import ConfigError, expected_types
from commands.optimizer_values import check_optimization
from datamodules.csv_table import DataError
from models.divergence import DivergenceRule
from models.schedules import check_rows_per_update
from models.spec import MLPSpec
from models.sweep_module import MemberData

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
    divergence: DivergenceRule

    def stack_key(self) -> str:
        """What members of one stack must share: everything but lr, seeds, init and hidden widths."""
        spec = {
            k: v
            for k, v in self.spec.__dict__.items()
            if k
            not in (
                "hidden_sizes",
                "init",
                "init_std",
                "init_seed",
                "bias_init",
                "legacy_scale",
                "legacy_call",
                "draw_order",
            )
        }
        spec["depth"] = len(self.spec.hidden_sizes)
        return json.dumps(
            [spec, self.optimizer, self.rows_per_update, self.batch_size, self.shuffle, self.divergence],
            sort_keys=True,
            default=str,
        )


@dataclass
class SweepOptions:
    """The sweep's own options; --sweep configs/sweeps/<grid>.yaml reads the first four from a file.

    Args:
        grid: Axes: dotted keys as --print_config shows them, or seed (init and data-order seed), with values.
        snapshots: Epochs at which every member is evaluated, besides the last.
        max_members: The most members in one stack; a larger grid trains as several stacks, one after another
            (the memory plan names one that fits when a stack would not).
        gradients: hand (hand-derived) or autograd (torch.func, the autograd twin).
        resume: The run directory of an interrupted sweep (runs/<sweep>_sweep/version_<n>), to go on from.
        export: best, or a member's name: written as an ordinary checkpoint once the sweep has trained.
    """

    # list, not list[Any]: jsonargparse checks every item of a list[Any] with a copy of the whole list (quadratic)
    grid: dict[str, list] = field(default_factory=dict)
    snapshots: list[PositiveInt] = field(default_factory=list)
    max_members: PositiveInt = 10_000
    gradients: Literal["hand", "autograd"] = "hand"
    resume: str | None = None
    export: str | None = None


def sweep_file_argument(args: list[str]) -> str | None:
    """The file of ``--sweep FILE`` or ``--sweep=FILE``, if any."""
    for i, arg in enumerate(args):
        if arg.startswith("--sweep="):
            return arg.split("=", 1)[1]
        if arg == "--sweep" and i + 1 < len(args):
            return args[i + 1]
    return None


def check_sweep_file(path: str) -> None:
    """A missing file, broken YAML (with its line and column) or an unknown top-level key, each in one message
    naming the file, before the parser reads it as the ``--sweep`` options."""
    file = Path(path)
    if not file.is_file():
        raise SweepError(f"{path}: no such sweep file; pass --sweep configs/sweeps/<name>.yaml")
    try:
        content = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SweepError(f"{path}{where}: not valid YAML ({getattr(error, 'problem', None) or error})") from None
    if not isinstance(content, dict):
        raise SweepError(f"{path}: needs a 'grid:' mapping of dotted keys to lists of values")
    known = [f.name for f in fields(SweepOptions) if f.name not in ("resume", "export")]
    unknown = sorted(set(content) - set(known))
    if unknown:
        raise SweepError(f"{path}: unknown key(s) {unknown}; a sweep file holds {', '.join(known)}")


def check_grid(grid: dict[str, list[Any]], where: str) -> None:
    """What the grid's types leave open: at least one axis, no empty axis, seeds that are whole numbers >= 0."""
    if not grid:
        raise SweepError(f"{where}: needs a 'grid:' mapping of dotted keys to lists of values")
    for key, values in grid.items():
        if not values:
            raise SweepError(f"{where}: grid key {key!r} is an empty list; give it at least one value or remove it")
    seeds = grid.get("seed", [])
    if not all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in seeds):
        raise SweepError(f"{where}: grid key 'seed' takes whole numbers >= 0 (init and data-order seeds), got {seeds}")


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
        try:
            module_name, class_name = str(value).rsplit(".", 1)
            accepted = inspect.signature(getattr(importlib.import_module(module_name), class_name)).parameters
        except (ValueError, ImportError, AttributeError):  # no such class: the validation names it
            return
        for name in [n for n in vars(init_args or {}) if n not in accepted]:
            delattr(init_args, name)


def representatives(values: list[Any]) -> list[Any]:
    """The values whose validation stands for the whole axis: every distinct non-numeric value, and the
    smallest and largest number of each numeric type (a range constraint is checked at both ends).
    Validating a config costs far more than a tiny member's training, and an axis may hold 10,000 values."""
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
        together = validation_error(cli, trial)
        if together is None:
            continue
        for key, value in trial.items():
            alone = validation_error(cli, {key: value})
            if alone is not None:
                raise SweepError(f"{path}: grid key {key!r} cannot take {value!r}: {alone}")
        raise SweepError(f"{path}: the values {trial} do not go together: {together}")


def validation_error(cli: LightningCLI, values: dict[str, Any]) -> str | None:
    """The config with ``values`` set, checked by the CLI's parser: None, or what the parser expected there.
    Only the branches the values touch (``model``, ``data``) are checked: the rest is every member's, checked
    once by the CLI, and a branch alone takes half the time of the whole config."""
    trial = Namespace(model=copy.deepcopy(cli.config.model), data=copy.deepcopy(cli.config.data))
    for key, value in values.items():
        set_value(trial, key, value)
    for branch in sorted({key.split(".", 1)[0] for key in values}):
        try:
            cli.parser.validate(trial[branch], branch=branch, skip_required=True)
        except Exception as error:  # jsonargparse reports type errors as plain exceptions
            return expected_types(str(error))
    return None


@dataclass
class LoadedData:
    data: MemberData
    batch_size: int
    shuffle: bool


def load_data(config: Namespace, loaded: dict[str, LoadedData]) -> LoadedData:
    """The member's DataModule, read once per distinct data config: members that differ only in the model or in
    their data-order seed (which orders the rows, never makes them) share the same tensors."""
    settings = config.as_dict()
    seed = int(settings["init_args"].pop("seed", 0))
    key = json.dumps(settings, sort_keys=True, default=str)
    if key not in loaded:
        module_name, class_name = config.class_path.rsplit(".", 1)
        try:
            datamodule = getattr(importlib.import_module(module_name), class_name)(**config.init_args.as_dict())
        except DataError:
            raise
        except ValueError as error:  # a value the class refuses: its own message names the key, as in `fit`
            raise ConfigError(str(error)) from error
        datamodule.setup("fit")
        x_train, y_train = datamodule.tensors("train")[:2]
        x_test, y_test = datamodule.tensors("test")[:2]
        data = MemberData(x_train, y_train, x_test, y_test, seed=int(datamodule.seed))
        loaded[key] = LoadedData(data, int(datamodule.batch_size), bool(datamodule.shuffle))
    shared = loaded[key]
    return LoadedData(dataclasses.replace(shared.data, seed=seed), shared.batch_size, shared.shuffle)


def build_member(cli: LightningCLI, values: dict[str, Any], loaded: dict[str, LoadedData]) -> Member:
    config = Namespace(model=copy.deepcopy(cli.config.model), data=copy.deepcopy(cli.config.data))
    for key, value in values.items():
        for target in SEED_KEYS if key == "seed" else (key,):
            set_value(config, target, value)
    model = config.model.init_args
    try:  # what the member's own MLPModule would check (the sweep's CLI parses but instantiates nothing)
        spec = MLPSpec(**model.net.as_dict())
        check_rows_per_update(model.rows_per_update)
        divergence = DivergenceRule(model.divergence_loss_growth, model.divergence_max_weight)
        check_optimization(config.model)  # the stacked optimisers check no values; torch's own do
    except ValueError as error:  # a value of the right type that the net refuses, e.g. a hidden width of 0
        grid_values = ", ".join(f"{key}={value!r}" for key, value in values.items())
        raise SweepError(f"the member with {grid_values}: {error}. Change it in the grid or the config") from None
    optimizer_path = model.optimizer.class_path if model.optimizer else "torch.optim.SGD"
    if optimizer_path not in OPTIMIZERS:
        raise SweepError(f"the sweep trains SGD and Adam; model.init_args.optimizer is {optimizer_path}")
    kind = OPTIMIZERS[optimizer_path]
    optimizer_args = model.optimizer.init_args.as_dict() if model.optimizer else {"lr": 0.1}
    if spec.dropout or spec.batch_norm or spec.conv_channels or model.lr_scheduler:
        raise SweepError("the sweep stacks dense nets without dropout, batch norm, conv layers or lr schedules")
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
        divergence=divergence,
    )


def stack_groups(members: list[Member]) -> list[list[Member]]:
    """Members that can share a stack, in grid order."""
    groups: dict[str, list[Member]] = {}
    for member in members:
        groups.setdefault(member.stack_key(), []).append(member)
    return list(groups.values())


def chunked(groups: list[list[Member]], max_members: int) -> list[list[Member]]:
    """Each group cut into stacks of at most ``max_members``."""
    return [group[i : i + max_members] for group in groups for i in range(0, len(group), max_members)]
