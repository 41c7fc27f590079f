"""Shared test helpers: quiet CPU trainers and float64 by default where gradients are compared."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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
        default_root_dir=tmp_path,
    )
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)


@pytest.fixture
def project_root() -> Path:
    return ROOT
