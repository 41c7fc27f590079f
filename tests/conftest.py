"""Shared test helpers: quiet CPU trainers and float64 by default where gradients are compared."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The tests' tensors are small: a second intra-op thread gains nothing and, when other processes share the
# 2 cores, its waiting made the fast loop several times slower (measured: 188 s against 114 s under load).
torch.set_num_threads(1)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_debian_fashion = pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(),
    reason=f"needs {DEBIAN_FASHION}: apt-get install -y dataset-fashion-mnist (CI installs it, see .ci/run)",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Multi-process tests are slow by nature: ``ddp`` implies ``slow``, so ``-m "not slow"`` leaves them out."""
    for item in items:
        if item.get_closest_marker("ddp"):
            item.add_marker(pytest.mark.slow)


def quiet_trainer(tmp_path: Path, **overrides: object) -> pl.Trainer:
    kwargs: dict[str, object] = dict(
        accelerator="cpu",
        devices=1,
        precision="64-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # the tests' runs have a handful of steps: log each (Lightning warns otherwise)
        default_root_dir=tmp_path,
    )
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)


@pytest.fixture
def project_root() -> Path:
    return ROOT


class MessagesOf(logging.Handler):
    """What a logger prints while the ``with`` block runs (Lightning's own loggers do not propagate to pytest's)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.logger, self.text = logging.getLogger(name), ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"

    def __enter__(self) -> MessagesOf:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
