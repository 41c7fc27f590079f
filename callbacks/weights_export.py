"""Initial and final weights as JSON in the run directory, and printed as the notebook reports them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.utilities import rank_zero_only

from models.console import detail, say

READABLE_MAX_VALUES = 10_000

DENSE_LAYOUT = (
    "W{k} has shape (fan_in, fan_out) and layer k computes Z_k = A_{k-1} @ W{k}%s, the notebooks' "
    "orientation; torch's parameter layers.{k-1}.weight is its transpose."
)
BIAS_LAYOUT = " b{k} is torch's layers.{k-1}.bias."
CONV_LAYOUT = " The conv front's kernels K{j} (out, in, k, k)%s are torch's convs.{j-1}.weight%s."
NORM_LAYOUT = (
    " Batch norm k maps Z_k to gamma{k} * (Z_k - mu) / sqrt(var + eps) + beta{k} before the activation, mu and var "
    "being the batch's while training and its running statistics mean{k} and var{k} in evaluation (torch's "
    "norms.{k-1}.weight, .bias, .running_mean and .running_var)."
)


def layout_text(weights: dict[str, np.ndarray]) -> str:
    """How to read ``weights``, naming only what this net has (biases, a conv front)."""
    has_bias = any(re.fullmatch(r"b\d+", name) for name in weights)
    text = DENSE_LAYOUT % (" + b{k}" if has_bias else "")
    if has_bias:
        text += BIAS_LAYOUT
    if any(name.startswith("K") for name in weights):
        conv_bias = any(name.startswith("c") for name in weights)
        text += CONV_LAYOUT % ((" and biases c{j}", " and .bias") if conv_bias else ("", ""))
    if "gamma1" in weights:
        text += NORM_LAYOUT
    return text


# (module list, tensor) -> the letter the notebooks and weights files use
NOTEBOOK_LETTERS = {
    ("layers", "weight"): "W",
    ("layers", "bias"): "b",
    ("convs", "weight"): "K",
    ("convs", "bias"): "c",
}


def notebook_name(parameter_name: str) -> str:
    """A net's parameter under the notebooks' name, as in the weights files: ``layers.0.weight`` -> ``W1``,
    ``layers.0.bias`` -> ``b1``, a conv front's ``convs.0.weight`` -> ``K1``; other names are kept."""
    parts = parameter_name.split(".")
    if len(parts) != 3:
        return parameter_name
    group, index, kind = parts
    letter = NOTEBOOK_LETTERS.get((group, kind))
    return f"{letter}{int(index) + 1}" if letter and index.isdigit() else parameter_name


def notebook_weights(module: pl.LightningModule) -> dict[str, np.ndarray]:
    """``W1, b1, W2, ...`` in the notebooks' (fan_in, fan_out) orientation, as float64 arrays;
    a conv front comes first as ``K1, c1, ...`` in torch's (out, in, k, k) layout; batch norms come last as
    ``gamma1, beta1, mean1, var1, ...``."""
    out: dict[str, np.ndarray] = {}
    for k, conv in enumerate(module.net.convs, start=1):
        out[f"K{k}"] = conv.weight.detach().cpu().double().numpy().copy()
        if conv.bias is not None:
            out[f"c{k}"] = conv.bias.detach().cpu().double().numpy().copy()
    for k, layer in enumerate(module.net.layers, start=1):
        out[f"W{k}"] = layer.weight.detach().cpu().double().numpy().T.copy()
        if layer.bias is not None:
            out[f"b{k}"] = layer.bias.detach().cpu().double().numpy().copy()
    for k, (gamma, beta, mean, var, _) in enumerate(module.net.norm_states(), start=1):
        for name, values in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
            out[f"{name}{k}"] = values.detach().cpu().double().numpy().copy()
    return out


def json_values(weights: np.ndarray) -> list:
    """Nested lists for JSON, with ``null`` for NaN and infinities (a diverged run), which JSON has no
    number for: ``json.dumps`` would write a bare ``NaN`` that other readers reject."""
    finite = np.isfinite(weights)
    return weights.tolist() if finite.all() else np.where(finite, weights, None).tolist()


def format_weights(weights: dict[str, np.ndarray]) -> str:
    with np.printoptions(precision=6, suppress=True):
        return "\n".join(f"{name} {tuple(w.shape)}:\n{w}" for name, w in weights.items())


class WeightsExport(pl.Callback):
    """Writes ``weights_initial.json`` at fit start and ``weights_final.json`` at fit end (rank 0 only)."""

    def __init__(self, print_final: bool = False) -> None:
        """``print_final``: print the final weights, not only where they went (``--verbose`` prints them too)."""
        self.print_final = print_final

    @staticmethod
    def run_dir(trainer: pl.Trainer) -> Path:
        return Path(trainer.log_dir or trainer.default_root_dir)

    @rank_zero_only
    def _write(self, trainer: pl.Trainer, module: pl.LightningModule, run_dir: Path, name: str) -> Path:
        weights = notebook_weights(module)
        path = run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "layout": layout_text(weights),
            "model": type(module).__name__,
            # Lightning's epoch counts blocks of epochs when a step runs several (model.epochs_per_step)
            "epoch": max(trainer.current_epoch, getattr(module, "epochs_done", 0)),
            "updates": getattr(module, "updates_done", trainer.global_step),
            "weights": {k: json_values(v) for k, v in weights.items()},
        }
        # Indented for the small course nets people read; compact (C-encoded) for MNIST-size ones.
        readable = sum(w.size for w in weights.values()) <= READABLE_MAX_VALUES
        path.write_text(json.dumps(payload, indent=1 if readable else None))
        return path

    # trainer.log_dir is a broadcast under DDP, so every rank asks for it before rank 0 writes.
    # fast_dev_run is a smoke test: like Lightning's logging and checkpointing, the export writes nothing.
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A resumed fit starts from its checkpoint, not from the initial weights its run already wrote."""
        if not trainer.fast_dev_run and trainer.ckpt_path is None:
            self._write(trainer, pl_module, self.run_dir(trainer), "weights_initial.json")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        path = self._write(trainer, pl_module, self.run_dir(trainer), "weights_final.json")
        if trainer.is_global_zero:
            weights = format_weights(notebook_weights(pl_module))
            (say if self.print_final else detail)(f"Final weights ({type(pl_module).__name__}):\n{weights}")
            say(f"Final weights: {path}")
