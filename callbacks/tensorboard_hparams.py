"""The HParams tab: the hyper-parameters a user varies, under readable names, and the final metrics.

The experiment config (``tensorboard.plugins.hparams``) declares every column, so no internal
(``_class_path``, unused conv fields) appears. TensorBoard's HParams table ticks the first five
hyper-parameters (those flagged ``differs`` first) and the first five metrics: the five that matter
most are flagged, and exactly five metrics are declared, so none is hidden. The metric columns are
the run's own epoch tags (``test/f1_epoch``, ...), whose last value TensorBoard shows: no extra
``hp/*`` chart is written.
"""

from __future__ import annotations

import os
import time

import lightning.pytorch as pl
import torch
from google.protobuf.message import Message
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams.summary_v2 import hparams_pb
from torch.utils.tensorboard import SummaryWriter

VALIDATION_IS_TEST = "test split (no validation split)"
TEST_IS_TRAIN = "none (and the test rows are the training rows)"
HParamValue = bool | int | float | str

TICKED = ("module", "lr", "hidden sizes", "seed", "validation")  # shown by default in the HParams table
SHOWN_METRICS = 5  # the HParams table ticks this many metric columns
DESCRIPTIONS = {
    "module": "manual: hand-derived gradients; native: autograd",
    "validation": "which rows the val/* curves are computed on",
    "rows per update": "rows averaged into one optimiser update",
    "batch size": "rows per Lightning training step (a block of updates when larger than rows per update)",
}


def module_label(module: pl.LightningModule) -> str:
    """``ManualModule`` -> ``manual``, ``NativeModule`` -> ``native``."""
    return type(module).__name__.removesuffix("Module").lower() or type(module).__name__


def same_rows(a: tuple | None, b: tuple | None) -> bool:
    return a is not None and b is not None and a[0].shape == b[0].shape and torch.equal(a[0], b[0])


def validation_source(datamodule: pl.LightningDataModule | None) -> str:
    """``held out``, or :data:`VALIDATION_IS_TEST` when the val rows are the test rows, or ``none``
    (saying so when the test rows are the training rows, as in Lab 4)."""
    tensors = getattr(datamodule, "tensors", None)
    if tensors is None:
        return "unknown"
    train, val, test = tensors("train"), tensors("val"), tensors("test")
    if val is None:
        return TEST_IS_TRAIN if same_rows(test, train) else "none"
    return VALIDATION_IS_TEST if same_rows(val, test) else "held out"


def _initial_lr(trainer: pl.Trainer) -> tuple[str, float] | None:
    if not trainer.optimizers:
        return None
    optimizer = trainer.optimizers[0]
    group = optimizer.param_groups[0]
    return type(optimizer).__name__, float(group.get("initial_lr", group["lr"]))


def _seed() -> int | None:
    """The seed ``seed_everything`` set (Lightning records it in this documented variable)."""
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def run_hparams(trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, HParamValue]:
    """What a user varies between runs, by readable name; absent keys are left blank in the table."""
    spec = getattr(module, "spec", None)
    datamodule = trainer.datamodule
    data_hparams = dict(getattr(datamodule, "hparams", {}) or {})
    params: dict[str, HParamValue] = {"module": module_label(module)}
    if datamodule is not None:
        params["data"] = str(data_hparams.get("dataset") or data_hparams.get("name") or type(datamodule).__name__)
    optimizer = _initial_lr(trainer)
    if optimizer is not None:
        params["optimizer"], params["lr"] = optimizer
    if spec is not None:
        params["hidden sizes"] = "x".join(map(str, spec.hidden_sizes)) or "none"
        params["activation"] = spec.activation
        params["init"] = spec.init
        if spec.init == "normal":
            params["init std"] = float(spec.init_std)
        if spec.init == "legacy_numpy":
            params["init scale"] = float(spec.legacy_scale)
        params["init seed"] = int(spec.init_seed)
        if spec.dropout:
            params["dropout"] = float(spec.dropout)
        if spec.batch_norm:
            params["batch norm"] = True
    if data_hparams.get("augment"):
        params["augment"] = True
    seed = _seed()
    if seed is not None:
        params["seed"] = seed
    batch_size = data_hparams.get("batch_size")
    if isinstance(batch_size, int):
        params["batch size"] = batch_size
    rows = getattr(module, "rows_per_update", None) or batch_size
    if isinstance(rows, int):
        params["rows per update"] = rows
    if trainer.max_epochs is not None and trainer.max_epochs >= 0:
        params["epochs"] = trainer.max_epochs
    params["precision"] = str(trainer.precision)
    params["accelerator"] = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
    params["validation"] = validation_source(datamodule)
    return params


def trial_name(params: dict[str, HParamValue]) -> str:
    """A short readable name for the HParams table, e.g. ``manual-lr0.1-h3x3-seed0``."""
    parts = [str(params.get("module", "run"))]
    if "lr" in params:
        parts.append(f"lr{params['lr']:g}")
    if "hidden sizes" in params:
        parts.append(f"h{params['hidden sizes']}")
    if "seed" in params:
        parts.append(f"seed{params['seed']}")
    return "-".join(parts)


def metric_infos(is_classifier: bool, validation: str) -> list[api_pb2.MetricInfo]:
    """The final value of five epoch tags: test scores, train loss, and val loss when the val rows are
    held out (otherwise it is the test loss again, and test accuracy takes its place)."""
    training, evaluation = api_pb2.DATASET_TRAINING, api_pb2.DATASET_VALIDATION
    scores = ("f1", "precision", "recall", "accuracy") if is_classifier else ("mse", "mae")
    columns = [(f"test/{name}_epoch", f"test {name}", evaluation) for name in scores]
    losses = [("train/loss_epoch", "train loss", training)]
    if validation == "held out":
        losses.append(("val/loss_epoch", "val loss", evaluation))
    columns = columns[: SHOWN_METRICS - len(losses)] + losses
    return [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=name, dataset_type=kind)
        for tag, name, kind in columns
    ]


def hparam_info(name: str, value: HParamValue) -> api_pb2.HParamInfo:
    kind = (
        api_pb2.DATA_TYPE_BOOL
        if isinstance(value, bool)
        else api_pb2.DATA_TYPE_FLOAT64
        if isinstance(value, (int, float))
        else api_pb2.DATA_TYPE_STRING
    )
    return api_pb2.HParamInfo(name=name, description=DESCRIPTIONS.get(name, ""), type=kind, differs=name in TICKED)


def plugin_summary(tag: str, content: Message) -> Summary:
    """A summary carrying HParams plugin data under ``tag``, as TensorBoard's own writers build it."""
    summary = Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(content), tensor=metadata.NULL_TENSOR)
    return summary


def write_session_start(
    writer: SummaryWriter, params: dict[str, HParamValue], metrics: list[api_pb2.MetricInfo]
) -> None:
    """The experiment config and this run's values, in the run's own event file.

    ``file_writer`` is the public attribute torch's own ``SummaryWriter.add_hparams`` writes raw
    summaries through; ``add_hparams`` itself would put them in a new sub-run.
    """
    now = time.time()
    infos = [hparam_info(name, value) for name, value in params.items()]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics, time_created_secs=now)
    content = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    writer.file_writer.add_summary(plugin_summary(metadata.EXPERIMENT_TAG, content))
    writer.file_writer.add_summary(hparams_pb(params, trial_id=trial_name(params), start_time_secs=now))


def session_end_pb(succeeded: bool) -> Summary:
    """The run's end and status (what ``tensorboard.plugins.hparams.summary.session_end_pb`` makes,
    without that module's TensorFlow import)."""
    status = api_pb2.STATUS_SUCCESS if succeeded else api_pb2.STATUS_FAILURE
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    return plugin_summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))


def write_session_end(writer: SummaryWriter, succeeded: bool) -> None:
    writer.file_writer.add_summary(session_end_pb(succeeded))
