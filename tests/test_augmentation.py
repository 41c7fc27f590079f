"""MNIST-family augmentation: training batches are shifted and rotated, validation and test batches are not;
the draws repeat for a seed, whichever module trains, and leave torch's own random stream alone."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from datamodules import MNISTDataModule
from experiments.runner import CONFIGS, run
from models import ManualModule, MLPSpec, NativeModule
from tests.conftest import needs_debian_fashion, quiet_trainer
from tests.test_mnist_family import write_idx_set

SPEC = MLPSpec(input_size=784, hidden_sizes=[8], output_size=10, activation="relu", init="torch_default")


class BatchRecorder(pl.Callback):
    """The inputs each stage's steps receive, after the DataModule's batch hooks."""

    def __init__(self) -> None:
        self.inputs: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.inputs["train"].append(batch[0].clone())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.inputs["val"].append(batch[0].clone())

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.inputs["test"].append(batch[0].clone())


def fit_and_test(data_dir, run_dir, module_class: type, augment: bool) -> tuple[BatchRecorder, MNISTDataModule]:
    dm = MNISTDataModule("mnist", data_dir=str(data_dir), download=False, batch_size=16, augment=augment)
    recorder = BatchRecorder()
    trainer = quiet_trainer(run_dir, max_epochs=2, precision="32-true", callbacks=[recorder])
    module = module_class(SPEC)
    trainer.fit(module, datamodule=dm)
    trainer.test(module, datamodule=dm, verbose=False)
    return recorder, dm


def plain_batches(dm: MNISTDataModule, split: str, epochs: int = 1) -> list[torch.Tensor]:
    loader = {"train": dm.train_dataloader, "val": dm.val_dataloader, "test": dm.test_dataloader}[split]()
    batches = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        batches += [x for x, _ in loader]
    return batches


def test_training_batches_are_augmented_and_repeat_for_a_seed_evaluation_batches_are_not(tmp_path) -> None:
    write_idx_set(tmp_path / "idx", n_train=50, n_test=20)
    data = tmp_path / "idx"
    manual, dm = fit_and_test(data, tmp_path / "manual", ManualModule, augment=True)
    native, _ = fit_and_test(data, tmp_path / "native", NativeModule, augment=True)
    plain, _ = fit_and_test(data, tmp_path / "plain", ManualModule, augment=False)
    raw_train = plain_batches(dm, "train", epochs=2)
    assert len(manual.inputs["train"]) == len(raw_train) == 6  # 45 training rows in batches of 16, 2 epochs
    for seen, raw, unaugmented in zip(manual.inputs["train"], raw_train, plain.inputs["train"]):
        assert torch.equal(unaugmented, raw)
        assert seen.shape == raw.shape and not torch.equal(seen, raw)
        moved = (seen - raw).abs().amax(1) > 1e-6  # each image has its own draw: almost every one changes
        assert moved.float().mean() > 0.8
    for seen, again in zip(manual.inputs["train"], native.inputs["train"]):
        assert torch.equal(seen, again)  # the same augmented batches for both modules
    assert not torch.equal(manual.inputs["train"][0], manual.inputs["train"][3])  # epoch 2 draws afresh
    for split in ("val", "test"):
        assert len(manual.inputs[split]) > 0
        for seen, raw in zip(manual.inputs[split], plain_batches(dm, split)):
            assert torch.equal(seen, raw)


def test_augmentation_is_a_function_of_seed_and_step_and_fills_with_black(tmp_path) -> None:
    write_idx_set(tmp_path, n_train=30, n_test=10)
    dm = MNISTDataModule("mnist", data_dir=str(tmp_path), download=False, augment=True)
    dm.setup("fit")
    x = dm.tensors("train")[0][:12]
    state = torch.get_rng_state()
    first = dm.augmented(x, step=3)
    assert torch.equal(torch.get_rng_state(), state)  # torch's own stream is forked, not consumed
    assert torch.equal(first, dm.augmented(x, step=3))
    assert not torch.equal(first, dm.augmented(x, step=4))
    other_seed = MNISTDataModule("mnist", data_dir=str(tmp_path), download=False, augment=True, seed=1)
    other_seed.setup("fit")
    assert not torch.equal(first, other_seed.augmented(x, step=3))
    black = torch.full_like(x, -0.1307 / 0.3081)  # a black image, normalised
    assert torch.equal(dm.augmented(black, step=3), black)  # uncovered corners are filled with black too
    still = MNISTDataModule("mnist", data_dir=str(tmp_path), download=False, augment_degrees=0, augment_translate=0)
    still.setup("fit")
    assert torch.equal(still.augmented(x, step=3), x)
    images = MNISTDataModule("mnist", data_dir=str(tmp_path), download=False, flatten=False)
    images.setup("fit")
    as_images = images.augmented(images.tensors("train")[0][:12], step=3)
    torch.testing.assert_close(as_images.reshape(12, -1), first, rtol=0, atol=0)  # (N, 1, 28, 28) alike


@pytest.mark.parametrize("changes", [{"augment_degrees": -1.0}, {"augment_translate": 1.5}])
def test_bad_augmentation_settings_are_explained(changes: dict) -> None:
    with pytest.raises(ValueError, match=r"data.augment_degrees must be >= 0 and data.augment_translate in \[0, 1\]"):
        MNISTDataModule("mnist", **changes)


@pytest.mark.slow
@needs_debian_fashion
def test_the_augment_config_trains_on_a_slice_of_fashion_mnist() -> None:
    """One training step of the shipped config (5,120 augmented images, 40 updates of 128), then the test."""
    slice_of_data = [
        "--trainer.max_steps=1",
        "--trainer.limit_test_batches=0.2",  # 2,048 test images
        "--model.init_args.net.hidden_sizes=[32]",
    ]
    result = run("fashion_mnist_mlp", slice_of_data, layers=[CONFIGS / "next_ideas" / "augment.yaml"])
    assert result.datamodule.hparams.augment and result.module.updates_done == 40
    first_loss, last_loss = (float(v) for v in result.module.update_losses[[0, -1]])
    assert last_loss < 0.8 * first_loss  # it learns from the augmented images
    assert result.last["test/accuracy"] > 0.5  # against 0.1 by chance, on unaugmented test images
