"""The TensorBoard dashboard, read back from the event files as TensorBoard itself reads them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from callbacks.tensorboard_dashboard import STEP_LOSS_TAG, TensorBoardDashboard, tensorboard_writer
from datamodules.toy import ToyDataModule
from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from tests.conftest import quiet_trainer

WEEK04 = dict(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False, init_std=0.2)
EPOCH_SCALARS = [
    f"{stage}/{name}" for stage in ("train", "val") for name in ("accuracy", "precision", "recall", "f1")
] + ["train/loss", "val/loss", "test/loss", "test/f1", "test/precision", "test/recall", "test/accuracy"]
PARAMS = ["net.layers.0.weight", "net.layers.1.weight", "net.layers.2.weight"]


def run(tmp_path, module_class, dashboard: TensorBoardDashboard, epochs: int = 2, batches: int = 30):
    module = module_class(MLPSpec(**WEEK04))
    dm = Week04DataModule(train_path=str(tmp_path / "no.csv"), test_path=str(tmp_path / "no2.csv"))
    logger = TensorBoardLogger(tmp_path, name="tb", default_hp_metric=False)
    trainer = quiet_trainer(
        tmp_path, logger=logger, callbacks=[dashboard], max_epochs=epochs, limit_train_batches=batches
    )
    trainer.fit(module, datamodule=dm)
    trainer.test(module, datamodule=dm, verbose=False)
    events = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    return trainer, events


def text(events: EventAccumulator, tag: str) -> str:
    return events.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
def test_every_dashboard_entry_is_in_the_event_file(tmp_path, module_class) -> None:
    trainer, events = run(tmp_path, module_class, TensorBoardDashboard())
    tags = events.Tags()

    steps = events.Scalars(STEP_LOSS_TAG)
    assert [s.step for s in steps] == list(range(1, trainer.global_step + 1)) and trainer.global_step == 60
    assert all(0.0 < s.value < 5.0 for s in steps)
    assert len(dashboard_losses := trainer.callbacks[0].step_losses) == 60
    assert [s.value for s in steps] == pytest.approx(dashboard_losses, rel=1e-6)
    for tag in EPOCH_SCALARS:
        assert tag in tags["scalars"], tag
    assert len(events.Scalars("val/f1")) == 2  # one point per epoch

    assert set(tags["images"]) == {"figures/loss_curve", "figures/decision_boundary", "figures/confusion_matrix"}
    for tag in tags["images"]:
        image = events.Images(tag)[-1]
        assert image.width >= 400 and image.encoded_image_string[:4] == b"\x89PNG"

    for name in PARAMS:
        assert len(events.Histograms(f"weights/{name}")) == 2
        gradients = events.Histograms(f"gradients/{name}")
        assert len(gradients) == 2
        assert max(abs(gradients[-1].histogram_value.min), abs(gradients[-1].histogram_value.max)) > 0

    weights = text(events, "weights/final")
    assert "W1 (2, 3)" in weights and "W3 (3, 2)" in weights and "fan_in, fan_out" in weights

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["model"].string_value == module_class.__name__
    assert hparams["net.activation"].string_value == "sigmoid"
    assert hparams["optimizer.lr"].number_value == pytest.approx(0.1)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"hp/test_f1", "hp/val_f1", "hp/train_loss"} <= metric_tags
    assert events.Scalars("hp/test_f1")[-1].value == pytest.approx(events.Scalars("test/f1")[-1].value)


def test_each_piece_switches_off(tmp_path) -> None:
    dashboard = TensorBoardDashboard(
        step_loss=False,
        hparams=False,
        histograms=False,
        loss_curve=False,
        confusion_matrix=False,
        decision_boundary=False,
        weights_text=False,
    )
    _, events = run(tmp_path, ManualModule, dashboard, epochs=1, batches=10)
    tags = events.Tags()
    assert tags["images"] == [] and tags["histograms"] == []
    assert STEP_LOSS_TAG not in tags["scalars"] and not any(t.startswith("hp/") for t in tags["scalars"])
    assert "weights/final/text_summary" not in tags["tensors"]
    with pytest.raises(KeyError):
        events.PluginTagToContent("hparams")
    assert "val/f1" in tags["scalars"]  # the module's own logging is untouched


def test_boundary_snapshots_every_epoch_and_writer_only_on_rank_zero(tmp_path) -> None:
    _, events = run(tmp_path, ManualModule, TensorBoardDashboard(decision_boundary_every_n_epochs=1), batches=5)
    assert len(events.Images("figures/decision_boundary")) == 2
    not_rank_zero = SimpleNamespace(is_global_zero=False, loggers=[object()])
    assert tensorboard_writer(not_rank_zero) is None


def test_conv_net_filters_are_drawn(tmp_path) -> None:
    """A conv front's first-layer kernels become one image: 4 tiles of 5x5 weights, 12 pixels each."""
    spec = MLPSpec(
        input_size=64, image_shape=[1, 8, 8], conv_channels=[4], conv_kernel_size=5, conv_padding=2,
        hidden_sizes=[8], output_size=10, activation="relu", init="he_normal",
    )  # fmt: skip
    dm = ToyDataModule("digits", batch_size=64)
    logger = TensorBoardLogger(tmp_path, name="tb", default_hp_metric=False)
    trainer = quiet_trainer(tmp_path, logger=logger, callbacks=[TensorBoardDashboard()], max_epochs=1)
    trainer.fit(ManualModule(spec), datamodule=dm)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    image = events.Images("figures/conv1_filters")[-1]
    assert (image.width, image.height) == (4 + 4 * (60 + 4), 4 + 60 + 4)  # padding 4 around 4 tiles of 60
    assert "figures/decision_boundary" not in events.Tags()["images"]  # 64 inputs: no 2-D boundary
