"""Fast path: several updates per Lightning step give exactly the one-update-per-step weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.baselines import week04_numpy_sgd
from datamodules.synthetic import week04_blobs
from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from tests.conftest import quiet_trainer

WEEK04 = dict(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False, init_std=0.2)


def train(module, tmp_path, batch_size: int, epochs: int = 1, limit: int | None = None):
    dm = Week04DataModule(batch_size=batch_size)
    trainer = quiet_trainer(tmp_path, max_epochs=epochs, limit_val_batches=0, limit_train_batches=limit)
    trainer.fit(module, datamodule=dm)
    return trainer


def test_numpy_block_path_reproduces_the_notebook_loop(tmp_path) -> None:
    module = ManualModule(MLPSpec(**WEEK04), rows_per_update=1)
    trainer = train(module, tmp_path, batch_size=400, epochs=3)
    assert module.numpy_path is not None
    assert module.updates_done == 1200  # one optimiser update per example, as with batch size 1
    assert trainer.global_step == 3  # one Lightning step per 400-row block
    x, y, _, _ = week04_blobs(0)
    weights, losses = week04_numpy_sgd(x, y, epochs=3)
    for layer, w in zip(module.net.layers, weights):
        np.testing.assert_allclose(layer.weight.detach().numpy().T, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(module.update_losses.numpy(), losses[-400:], rtol=1e-10)


OPTIMIZERS = {
    "sgd_momentum_nesterov_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd_momentum_dampening": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.1),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
}


@pytest.mark.slow
@pytest.mark.parametrize("module_class", [ManualModule, NativeModule])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_block_updates_equal_one_update_per_step(tmp_path, module_class, name: str) -> None:
    spec = dict(WEEK04, bias=True, activation="tanh")
    per_step = module_class(MLPSpec(**spec), optimizer=OPTIMIZERS[name])
    train(per_step, tmp_path / "a", batch_size=2, limit=100)
    block = module_class(MLPSpec(**spec), optimizer=OPTIMIZERS[name], rows_per_update=2)
    trainer = train(block, tmp_path / "b", batch_size=40, limit=5)
    assert block.updates_done == 100 and trainer.global_step == 5
    for a, b in zip(per_step.parameters(), block.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)


def test_uneven_last_chunk_matches_hand_stepped_updates(tmp_path) -> None:
    """400 rows in blocks of 64 with 3 rows per update: chunks of 3 and a last chunk of 1 per block."""
    per_step = ManualModule(MLPSpec(**WEEK04), optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    block = ManualModule(MLPSpec(**WEEK04), optimizer=lambda p: torch.optim.SGD(p, lr=0.1), rows_per_update=3)
    train(block, tmp_path / "b", batch_size=64)
    # the same sequence of updates, expressed as batches: every block is cut into 3,3,...,3,1
    dm = Week04DataModule(batch_size=64)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.set_epoch(0)
    optimizer = torch.optim.SGD(per_step.parameters(), lr=0.1)
    per_step.double()
    per_step.net.reset_parameters()
    for x, y in loader:
        for start in range(0, len(x), 3):
            _, grads = per_step.net.loss_and_gradients(x[start : start + 3], y[start : start + 3])
            for p, g in zip(per_step.net.parameters(), grads):
                p.grad = g
            optimizer.step()
    for a, b in zip(per_step.parameters(), block.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_rows_per_update_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rows_per_update must be >= 1"):
        ManualModule(MLPSpec(**WEEK04), rows_per_update=0)
