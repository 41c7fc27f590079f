"""Whether a checkpoint fits the run about to use it: a Lightning checkpoint (not a bare state_dict), with
exactly the net's weights in the net's shapes, all finite, and trained on the config's kind of data (whose
fitted columns, classes and normalisation it carries). Checked before the run's folder exists, so a mismatch is
one message instead of a traceback from ``load_state_dict`` or a test scored on untransformed data."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor

from callbacks.checkpoints import CheckpointError

OWN_CHECKPOINTS = "Pass a .ckpt from runs/<name>/version_<n>/checkpoints/"


def shape(tensor: Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "a scalar"


def listed(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def weights_of(checkpoint: object, where: str) -> dict[str, Tensor]:
    """The checkpoint's ``state_dict``; a bare state_dict (``torch.save(model.state_dict())``) or another object
    is refused, since it lacks the training state and the data's fitted transform."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        return checkpoint["state_dict"]
    if isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
        raise CheckpointError(
            f"{where}: a bare state_dict (weights only, as torch.save(model.state_dict()) writes), not a Lightning "
            "checkpoint: it has no training state, hyper-parameters or fitted data transform to restore. "
            f"{OWN_CHECKPOINTS}."
        )
    raise CheckpointError(f"{where}: not a Lightning checkpoint (it holds no state_dict). {OWN_CHECKPOINTS}.")


def weights_mismatch(saved: dict[str, Tensor], expected: dict[str, Tensor]) -> str | None:
    """What differs between the checkpoint's weights and the net's: missing or extra keys, or shapes."""
    missing = [k for k in expected if k not in saved]
    if missing:
        return f"it lacks {listed(missing)}, which the net has"
    extra = [k for k in saved if k not in expected]
    if extra:
        return f"it holds {listed(extra)}, which the net has no place for"
    for key, tensor in expected.items():
        if not isinstance(saved[key], Tensor) or saved[key].shape != tensor.shape:
            got = shape(saved[key]) if isinstance(saved[key], Tensor) else type(saved[key]).__name__
            return f"its {key} is {got} but the net's is {shape(tensor)}"
    return None


def non_finite(saved: dict[str, Tensor]) -> str | None:
    """The first weight tensor holding NaN or inf, and how many of its entries do."""
    for key, tensor in saved.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return f"{key}: {int((~torch.isfinite(tensor)).sum())} of {tensor.numel()} entries"
    return None


def data_mismatch(checkpoint: dict, datamodule: pl.LightningDataModule | None) -> str | None:
    """The checkpoint's DataModule class against the config's: Lightning restores the fitted columns, classes
    and normalisation only into a DataModule of the class that saved them, and silently skips them otherwise."""
    saved_path = (checkpoint.get("datamodule_hyper_parameters") or {}).get("_class_path")
    if datamodule is None or not isinstance(saved_path, str):
        return None
    if saved_path.rsplit(".", 1)[-1] == type(datamodule).__qualname__:
        return None
    carried = saved_path.rsplit(".", 1)[-1] in checkpoint
    return (
        f"it was trained on {saved_path} data{', whose fitted transform it carries,' if carried else ''} but the "
        f"config's data is {type(datamodule).__module__}.{type(datamodule).__qualname__}"
        f"{', which would not restore it' if carried else ''}"
    )


def check_checkpoint_fits(
    path: str | Path, model: pl.LightningModule, datamodule: pl.LightningDataModule | None
) -> None:
    """Refuse, in one message, a checkpoint that ``model`` (built from the config and the checkpoint's
    hyper-parameters) cannot load, whose weights are not finite, or whose data is not the config's."""
    where = f"--ckpt_path {path}"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    saved = weights_of(checkpoint, where)
    spec = getattr(model, "spec", None)
    net = f"the net ({spec.summary})" if spec is not None else "the model"
    mismatch = weights_mismatch(saved, model.state_dict())
    if mismatch:
        raise CheckpointError(
            f"{where}: the checkpoint does not fit {net}: {mismatch}. It was written for another net, or altered. "
            f"{OWN_CHECKPOINTS} of a run of this config."
        )
    bad = non_finite(saved)
    if bad:
        raise CheckpointError(
            f"{where}: the checkpoint's weights are not finite (NaN or inf in {bad}): the run that wrote it diverged, "
            "and anything computed from them would be NaN. Use a checkpoint from before the divergence, or train "
            "again with a lower model.init_args.optimizer.init_args.lr."
        )
    other_data = data_mismatch(checkpoint, datamodule)
    if other_data:
        config = Path(path).parent.parent / "config.yaml"
        hint = f"--config {config}" if config.is_file() else "the config it was trained with"
        raise CheckpointError(f"{where}: {other_data}. Use {hint}.")
