"""What a sweep does with the config's ``trainer.*`` settings: each is honoured by every stack's Trainer, or refused
by name before anything trains.

A stack is one Lightning fit of many members, whose Lightning epochs are blocks of notebook epochs; so settings that
count Lightning's epochs or steps, or that act on one net's validation, gradients or batches, cannot mean what they
say there and are refused. Callbacks are per net: the sweep runs those it knows how to run per member
(:data:`PER_MEMBER_CALLBACKS`), lets those that act only on ``test`` or ``predict`` stand (they act on an exported
member), and refuses the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.loggers import TensorBoardLogger

from commands.sweep_grid import SweepError

# The stack's Trainer takes these as they are.
PASSED_THROUGH = (
    "accelerator",
    "devices",
    "num_nodes",
    "precision",
    "deterministic",
    "benchmark",
    "enable_progress_bar",
    "enable_checkpointing",
    "enable_model_summary",
    "default_root_dir",
    "inference_mode",
)
# Read by the sweep itself: the epochs every member trains, the hardware, where the logs go, the callbacks below.
READ_BY_THE_SWEEP = ("max_epochs", "strategy", "logger", "callbacks")
# No effect in a sweep, which has no validation loop and logs every epoch's losses itself.
WITHOUT_EFFECT = ("limit_val_batches", "num_sanity_val_steps", "check_val_every_n_epoch", "val_check_interval")
LOGGING_STEPS = ("log_every_n_steps",)

# callbacks the sweep runs per member, and what stands for them
PER_MEMBER_CALLBACKS = {
    "callbacks.TensorBoardDashboard": "the sweep's own TensorBoard runs, one per member (loss curve, HParams)",
    "callbacks.tensorboard_dashboard.TensorBoardDashboard": "the sweep's own TensorBoard runs, one per member",
    "callbacks.GradientCheck": "every member's hand-derived gradients against autograd at each stack's start",
    "callbacks.gradient_check.GradientCheck": "every member's hand-derived gradients against autograd",
}
# callbacks that act only on test or predict, which a sweep does not run: they act on an exported member
EXPORT_CALLBACKS = (
    "callbacks.F1Comparison",
    "callbacks.f1_comparison.F1Comparison",
    "callbacks.prediction_writer.PredictionWriter",
)
PER_MEMBER_HELP = "TensorBoardDashboard and GradientCheck run per member; F1Comparison and PredictionWriter act on "


def trainer_settings(config: Namespace, defaults: Namespace) -> dict[str, Any]:
    """The stack Trainer's keyword arguments from ``config`` (the parsed ``trainer``); anything it cannot honour is
    refused, every such key named in one message."""
    refused = []
    for key, value in vars(config).items():
        if key.startswith("__") or key in (*PASSED_THROUGH, *READ_BY_THE_SWEEP, *WITHOUT_EFFECT, *LOGGING_STEPS):
            continue  # "__path__": the file a --trainer preset came from
        if value != defaults.get(key):
            refused.append(f"trainer.{key}={value!r}")
    if refused:
        raise SweepError(
            f"train.py sweep cannot honour {', '.join(refused)}: a stack trains many members in blocks of epochs "
            "through its own update loop, so settings that count Lightning's epochs or steps or act on one net's "
            "batches, gradients or evaluation do not apply. Leave them out of the sweep's config or command line"
        )
    logger = config.logger
    if logger not in (None, True) and not (isinstance(logger, Namespace) and is_tensorboard(logger.class_path)):
        raise SweepError(
            f"train.py sweep writes TensorBoard runs and a results table beside them; trainer.logger="
            f"{describe(logger)} cannot hold them. Use callbacks.tensorboard_logger.EpochTensorBoardLogger (its "
            "save_dir is honoured)"
        )
    settings = {key: config[key] for key in PASSED_THROUGH if config[key] is not None}
    settings["strategy"] = strategy(config.strategy)
    return settings


def is_tensorboard(class_path: str) -> bool:
    module_name, class_name = class_path.rsplit(".", 1)
    return issubclass(getattr(importlib.import_module(module_name), class_name), TensorBoardLogger)


def describe(value: object) -> str:
    return value.class_path if isinstance(value, Namespace) else repr(value)


def strategy(value: object) -> object:
    """A strategy name as it is, a configured strategy class built afresh (one per stack's Trainer)."""
    if isinstance(value, Namespace):
        module_name, class_name = value.class_path.rsplit(".", 1)
        init_args = value.init_args.as_dict() if value.get("init_args") else {}
        return getattr(importlib.import_module(module_name), class_name)(**init_args)
    return value


def sweep_callbacks(callbacks: list[Namespace] | None) -> dict[str, Namespace]:
    """The config's callbacks the sweep runs per member, by class path; a callback it cannot run is refused."""
    known: dict[str, Namespace] = {}
    for callback in callbacks or []:
        path = callback.class_path
        if path in PER_MEMBER_CALLBACKS:
            known[path.rsplit(".", 1)[-1]] = callback
        elif path not in EXPORT_CALLBACKS:
            raise SweepError(
                f"trainer.callbacks holds {path}, which train.py sweep cannot run: a callback is written for one net, "
                f"and a stack trains many. {PER_MEMBER_HELP}an exported member (--sweep.export). Remove it for the "
                "sweep (e.g. --trainer.callbacks=[] and add back the ones above)"
            )
    return known
