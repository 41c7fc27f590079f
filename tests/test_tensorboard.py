"""The TensorBoard dashboard and logger, read back from the event files as TensorBoard reads them.

What the TensorBoard web page then shows for a ``compare`` run: tests/test_tensorboard_backend.py.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from callbacks.scalar_record_file import ScalarRecordFile, framed_records
from callbacks.tensorboard_dashboard import UPDATE_LOSS_TAG, TensorBoardDashboard, tensorboard_writer
from callbacks.tensorboard_hparams import TEST_IS_TRAIN, VALIDATION_IS_TEST, validation_source
from callbacks.tensorboard_logger import EpochTensorBoardLogger
from callbacks.weights_export import WeightsExport, layout_text
from datamodules import CSVDataModule
from datamodules.toy import ToyDataModule
from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from tests.conftest import ROOT, quiet_trainer

WEEK04 = dict(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False, init_std=0.2)
EPOCH_TAGS = [f"{stage}/{name}_epoch" for stage in ("train", "val", "test") for name in ("loss", "accuracy", "f1")]
PARAMS = ["net.layers.0.weight", "net.layers.1.weight", "net.layers.2.weight"]
SIZES = {"scalars": 0, "images": 0, "histograms": 0, "tensors": 0}


def run(tmp_path, module_class, dashboard: TensorBoardDashboard, epochs: int = 2, batches: int = 30, extra=()):
    module = module_class(MLPSpec(**WEEK04))
    logger = EpochTensorBoardLogger(tmp_path, name="tb", default_hp_metric=False)
    callbacks = [*extra, dashboard]
    trainer = quiet_trainer(
        tmp_path, logger=logger, callbacks=callbacks, max_epochs=epochs, limit_train_batches=batches
    )
    trainer.fit(module, datamodule=Week04DataModule())
    trainer.test(module, datamodule=Week04DataModule(), verbose=False)
    events = EventAccumulator(logger.log_dir, size_guidance=SIZES)
    events.Reload()
    return trainer, events


def text(events: EventAccumulator, tag: str) -> str:
    return events.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


def steps(events: EventAccumulator, tag: str) -> list[int]:
    return [s.step for s in events.Scalars(tag)]


@pytest.mark.slow
@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
def test_every_dashboard_entry_is_in_the_event_file(tmp_path, module_class) -> None:
    trainer, events = run(tmp_path, module_class, TensorBoardDashboard())
    tags = events.Tags()

    updates = events.Scalars(UPDATE_LOSS_TAG)
    module = trainer.lightning_module
    assert [s.step for s in updates] == list(range(1, 61)) and module.updates_done == 60  # keyed by update
    assert [s.value for s in updates] == pytest.approx(trainer.callbacks[0].update_losses, rel=1e-6)
    for tag in EPOCH_TAGS:  # keyed by epochs completed; test after the 2 epochs
        assert steps(events, tag) == ([2] if tag.startswith("test/") else [1, 2]), tag
    assert not [t for t in tags["scalars"] if t.endswith("_step") or t.startswith("hp/") or t == "epoch"]

    assert set(tags["images"]) == {"figures/loss_curve", "figures/decision_boundary", "figures/confusion_matrix"}
    for tag in tags["images"]:
        image = events.Images(tag)[-1]
        assert image.width >= 400 and image.encoded_image_string[:4] == b"\x89PNG"
    for name in PARAMS:
        assert [h.step for h in events.Histograms(f"weights/{name}")] == [1, 2]
        gradient = events.Histograms(f"gradients/{name}")[-1].histogram_value
        assert max(abs(gradient.min), abs(gradient.max)) > 0
    weights = text(events, "weights/final")
    assert "W1 (2, 3)" in weights and "W3 (3, 2)" in weights and "fan_in, fan_out" in weights
    assert "conv" not in weights and "b{k}" not in weights  # says only what this net has
    assert tags["graph"]  # the net traced on one training row

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["module"].string_value == module_class.__name__.removesuffix("Module").lower()
    assert hparams["lr"].number_value == pytest.approx(0.1) and hparams["hidden sizes"].string_value == "3x3"
    assert hparams["validation"].string_value == VALIDATION_IS_TEST
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {info.name for info in experiment.hparam_infos} == set(hparams)
    assert [m.name.tag for m in experiment.metric_infos] == [
        "test/f1_epoch", "test/precision_epoch", "test/recall_epoch", "test/accuracy_epoch", "train/loss_epoch"
    ]  # fmt: skip
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info
    assert end.status == 1  # STATUS_SUCCESS


def test_each_piece_switches_off(tmp_path) -> None:
    dashboard = TensorBoardDashboard(
        update_loss=False,
        hparams=False,
        graph=False,
        histograms=False,
        loss_curve=False,
        confusion_matrix=False,
        decision_boundary=False,
        weights_text=False,
    )
    _, events = run(tmp_path, ManualModule, dashboard, epochs=1, batches=10)
    tags = events.Tags()
    assert tags["images"] == [] and tags["histograms"] == [] and not tags["graph"]
    assert UPDATE_LOSS_TAG not in tags["scalars"]
    assert "weights/final/text_summary" not in tags["tensors"]
    with pytest.raises(KeyError):
        events.PluginTagToContent("hparams")
    assert "val/f1_epoch" in tags["scalars"]  # the module's own logging is untouched


def test_boundary_snapshots_every_epoch_and_writer_only_on_rank_zero(tmp_path) -> None:
    _, events = run(tmp_path, ManualModule, TensorBoardDashboard(decision_boundary_every_n_epochs=1), batches=5)
    assert [image.step for image in events.Images("figures/decision_boundary")] == [1, 2]
    not_rank_zero = SimpleNamespace(is_global_zero=False, loggers=[object()])
    assert tensorboard_writer(not_rank_zero) is None


class PoisonWeights(pl.Callback):
    """After the last update, one weight becomes inf and another NaN, as in a diverged run."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx + 1 == trainer.num_training_batches:
            with torch.no_grad():
                weight = pl_module.net.layers[0].weight
                weight[0, 0], weight[0, 1] = float("inf"), float("nan")


# torchmetrics drops the NaN losses of the poisoned net from its means, and says so: expected here.
@pytest.mark.filterwarnings("ignore:Encountered `nan` values in tensor:UserWarning")
def test_non_finite_weights_never_stop_the_dashboard(tmp_path) -> None:
    export = WeightsExport(print_final=False)
    with pytest.warns(UserWarning, match="weights/net.layers.0.weight has non-finite values"):
        trainer, events = run(
            tmp_path, ManualModule, TensorBoardDashboard(), epochs=1, batches=5, extra=[PoisonWeights(), export]
        )
    histogram = events.Histograms("weights/net.layers.0.weight")[-1].histogram_value
    assert histogram.num == 6 - 2 and np.isfinite([histogram.min, histogram.max]).all()  # the finite entries
    assert {"figures/loss_curve", "figures/decision_boundary"} <= set(events.Tags()["images"])
    assert "nan" in text(events, "weights/final") and "inf" in text(events, "weights/final")

    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    saved = json.loads(Path(trainer.log_dir, "weights_final.json").read_text(), parse_constant=reject)
    assert saved["weights"]["W1"][0][0] is None and saved["weights"]["W1"][1][0] is None  # W1 = layers.0.weight.T


@pytest.mark.slow
def test_conv_net_filters_are_drawn(tmp_path) -> None:
    """A conv front's first-layer kernels become one image: 4 tiles of 5x5 weights, 12 pixels each."""
    spec = MLPSpec(
        input_size=64, image_shape=[1, 8, 8], conv_channels=[4], conv_kernel_size=5, conv_padding=2,
        hidden_sizes=[8], output_size=10, activation="relu", init="he_normal",
    )  # fmt: skip
    dm = ToyDataModule("digits", batch_size=64, val_size=0.1)
    logger = EpochTensorBoardLogger(tmp_path, name="tb", default_hp_metric=False)
    trainer = quiet_trainer(tmp_path, logger=logger, callbacks=[TensorBoardDashboard()], max_epochs=1)
    trainer.fit(ManualModule(spec), datamodule=dm)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    image = events.Images("figures/conv1_filters")[-1]
    assert (image.width, image.height) == (4 + 4 * (60 + 4), 4 + 60 + 4)  # padding 4 around 4 tiles of 60
    assert "figures/decision_boundary" not in events.Tags()["images"]  # 64 inputs: no 2-D boundary
    assert "K1" in text(events, "weights/final") and "conv front" in text(events, "weights/final")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    )
    assert start.session_start_info.hparams["validation"].string_value == "held out"


def test_logger_keys_epoch_metrics_by_epoch_and_passes_explicit_steps(tmp_path) -> None:
    logger = EpochTensorBoardLogger(tmp_path, name="tb")
    # the modules log each stage's epoch values with the notebook epochs done and the updates done (the step)
    logger.log_metrics({"train/loss": 0.5, "train/loss_step": 0.7, "epoch": 1}, step=123)
    logger.log_metrics({"test/f1": 0.9, "epoch": 1}, step=456)  # the test after that one epoch
    logger.log_metrics({"lr-SGD": 0.1}, step=400)  # LearningRateMonitor: its own step
    logger.finalize("success")
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["lr-SGD", "test/f1_epoch", "train/loss_epoch"]
    assert steps(events, "train/loss_epoch") == [1] and steps(events, "test/f1_epoch") == [1]
    assert steps(events, "lr-SGD") == [400]


@pytest.mark.slow
def test_closing_after_a_lost_writer_wakeup_does_not_hang(tmp_path) -> None:
    """Ctrl-C inside ``Queue.put`` can queue an event without waking the writer thread; Lightning's
    shutdown flush then waits for the thread's own timer, ``flush_secs`` (torch's default: 120 s)."""
    logger = EpochTensorBoardLogger(tmp_path, name="tb")
    logger.log_metrics({"a": 1.0}, step=1)
    logger.experiment.flush()  # the writer thread now sleeps on its queue
    wake = threading.Condition.notify
    lost: list[bool] = []

    def lose_first_wakeup(self, n: int = 1) -> None:
        if not lost:
            lost.append(True)
            return
        wake(self, n)

    threading.Condition.notify = lose_first_wakeup
    try:
        logger.log_metrics({"a": 2.0}, step=2)
    finally:
        threading.Condition.notify = wake
    assert lost
    shutdown = threading.Thread(target=logger.finalize, args=("failed",), daemon=True)
    shutdown.start()
    shutdown.join(timeout=60)  # a hang detector (120 s before the fix), not a speed measurement
    assert not shutdown.is_alive()
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert steps(events, "a") == [1, 2]  # nothing lost


def test_scalar_record_file_reads_back_beside_the_main_event_file(tmp_path) -> None:
    """TensorBoard reads the two event files of the run as one run, whatever order their names sort in."""
    writer = torch.utils.tensorboard.SummaryWriter(tmp_path)
    writer.add_scalar("train/loss_epoch", 0.5, 1)
    writer.close()
    updates = ScalarRecordFile(tmp_path, "updates")
    updates.add(UPDATE_LOSS_TAG, [0.25, 1e30, float("nan")], first_step=1)
    updates.add(UPDATE_LOSS_TAG, [0.125], first_step=4)
    updates.close()
    events = EventAccumulator(str(tmp_path), size_guidance=SIZES)
    events.Reload()
    points = events.Scalars(UPDATE_LOSS_TAG)
    assert [p.step for p in points] == [1, 2, 3, 4] and steps(events, "train/loss_epoch") == [1]
    assert points[0].value == 0.25 and points[1].value == pytest.approx(1e30, rel=1e-6) and np.isnan(points[2].value)
    assert len(list(tmp_path.iterdir())) == 2
    again = ScalarRecordFile(tmp_path, "updates")  # a second fit into the same run, in the same second
    again.close()
    assert again.path != updates.path and updates.path.stat().st_size > again.path.stat().st_size


@given(st.lists(st.binary(max_size=300), max_size=40))
def test_records_are_framed_as_tensorboards_record_writer_frames_them(records: list[bytes]) -> None:
    expected = io.BytesIO()
    writer = RecordWriter(expected)
    for record in records:
        writer.write(record)
    assert framed_records(records) == expected.getvalue()


def test_layout_text_names_only_what_the_net_has() -> None:
    dense = {"W1": np.zeros((2, 3)), "W2": np.zeros((3, 1))}
    assert "b{k}" not in layout_text(dense) and "conv" not in layout_text(dense)
    biased = {**dense, "b1": np.zeros(3)}
    assert "b{k}" in layout_text(biased)
    conv = {"K1": np.zeros((4, 1, 5, 5)), **dense}
    assert "K{j}" in layout_text(conv) and "c{j}" not in layout_text(conv)


def test_validation_source_says_when_val_is_the_test_split() -> None:
    week04 = Week04DataModule()
    week04.setup("fit")
    assert validation_source(week04) == VALIDATION_IS_TEST
    held_out = ToyDataModule("moons", val_size=0.2)
    held_out.setup("fit")
    assert validation_source(held_out) == "held out"
    lab04 = CSVDataModule(
        train_path=str(ROOT / "data/lab04/train.csv"), test_path=str(ROOT / "data/lab04/train.csv"), label="score",
        task="regression", target_scale=100, normalize="max", batch_size=3,
    )  # fmt: skip
    lab04.setup("fit")
    assert validation_source(lab04) == TEST_IS_TRAIN
