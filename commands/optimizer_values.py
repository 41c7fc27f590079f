"""Optimiser and schedule values the math refuses (a negative learning rate, momentum or eps, StepLR's
``step_size`` 0), refused by config key before anything trains, in ``fit``, ``compare`` and sweep grids alike.

torch's own classes know the rules: the configured optimiser and schedule are built once on a stand-in parameter
and stepped once, and what they refuse is named by the config key holding the value they refused.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
from jsonargparse import Namespace

from commands.errors import ConfigError
from models.schedules import build_lr_scheduler

# What torch raises for a value out of range, and for a divisor of 0 it does not check (StepLR's step_size).
REFUSALS = (ValueError, ZeroDivisionError)
STAND_IN_UPDATES = 100  # the run's length, for a schedule that spans it (OneCycleLR without total_steps)


@dataclass(frozen=True)
class Settings:
    """One configured class: its config key (``model.init_args.optimizer``), ``class_path`` and ``init_args``."""

    key: str
    class_path: str
    args: dict[str, Any]

    @property
    def cls(self) -> type:
        module_name, class_name = self.class_path.rsplit(".", 1)
        return getattr(importlib.import_module(module_name), class_name)

    def with_arg(self, name: str, value: Any) -> Settings:
        return replace(self, args={**self.args, name: value})


def settings_of(config: Namespace | None, key: str) -> Settings | None:
    if config is None:
        return None
    return Settings(key, config.class_path, dict(vars(config.get("init_args") or Namespace())))


def build(optimizer: Settings, scheduler: Settings | None) -> None:
    """The optimiser (and schedule) on a stand-in parameter, then one update and one schedule step: torch checks
    some values only when it uses them (StepLR divides by ``step_size`` at its first step)."""
    built = optimizer.cls([torch.nn.Parameter(torch.zeros(1))], **optimizer.args)
    if scheduler is None:
        return
    schedule = build_lr_scheduler(partial(scheduler.cls, **scheduler.args), built, lambda: STAND_IN_UPDATES)
    built.step()  # no gradient, so nothing changes; and torch does not warn that the schedule stepped first
    if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
        schedule.step(0.0)
    else:
        schedule.step()


def refusal(optimizer: Settings, scheduler: Settings | None) -> Exception | None:
    """What torch raises for these settings, or None when it takes them."""
    try:
        build(optimizer, scheduler)
    except REFUSALS as error:
        return error
    return None


def culprit(refused: Settings, error: Exception, retry: Any) -> str | None:
    """The argument of ``refused`` that ``error`` is about: the first whose default, put in its place, silences
    or changes the error (torch stops at the first value it refuses); else the one argument that is 0 when
    something was divided by 0, or the one whose value the message quotes."""
    defaults = {n: p.default for n, p in inspect.signature(refused.cls).parameters.items() if p.default is not p.empty}
    for name, value in refused.args.items():
        if name in defaults and defaults[name] != value:
            again = retry(refused.with_arg(name, defaults[name]))
            if again is None or str(again) != str(error):
                return name
    if isinstance(error, ZeroDivisionError):
        suspects = [n for n, v in refused.args.items() if v == 0 and not isinstance(v, bool)]
    else:
        suspects = [n for n, v in refused.args.items() if v is not None and repr(v) in str(error)]
    return suspects[0] if len(suspects) == 1 else None


def check_optimization(model: Namespace | None) -> None:
    """Refuse an optimiser or schedule value torch refuses, naming its key (``model``: the config's ``model``
    entry, ``class_path`` + ``init_args``), before anything trains. Only the classes the config names are built."""
    init_args = (model or Namespace()).get("init_args") or Namespace()
    optimizer = settings_of(init_args.get("optimizer"), "model.init_args.optimizer")
    optimizer = optimizer or Settings("model.init_args.optimizer", "torch.optim.SGD", {"lr": 0.1})
    scheduler = settings_of(init_args.get("lr_scheduler"), "model.init_args.lr_scheduler")
    error = refusal(optimizer, None)
    if error is not None:
        refused, name = optimizer, culprit(optimizer, error, lambda changed: refusal(changed, None))
    elif scheduler is not None and (error := refusal(optimizer, scheduler)) is not None:
        refused, name = scheduler, culprit(scheduler, error, lambda changed: refusal(optimizer, changed))
    else:
        return
    if name is None:
        raise ConfigError(f"{refused.key}: {refused.class_path} refuses its settings: {error}")
    value = refused.args[name]
    if isinstance(error, ZeroDivisionError):
        raise ConfigError(
            f"{refused.key}.init_args.{name} is {value!r}, which {refused.class_path} divides by ({error})"
        )
    raise ConfigError(f"{refused.key}.init_args.{name} is {value!r}, which {refused.class_path} refuses: {error}")
