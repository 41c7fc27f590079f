"""Macro P/R/F1 of the final weights on every available accelerator, in float32 and float64.

After test, the test split is evaluated again with a copy of the net on each (accelerator, dtype)
pair; the rows are appended to one CSV table shared by all runs (and rewritten as markdown), so
runs of different models, machines and accelerators line up.
"""

from __future__ import annotations

import copy
import csv
import socket
from datetime import datetime, timezone
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from callbacks.batches import collect_rows, datamodule_loader
from callbacks.tensorboard_dashboard import tensorboard_writer
from models.base_net import MLPParameters
from models.console import detail, say
from models.epoch_blocks import epochs_done
from models.metrics import metric_collection, metric_inputs
from models.tables import markdown_table

COLUMNS = (
    "timestamp",
    "host",
    "model",
    "net",
    "accelerator",
    "device",
    "dtype",
    "precision",
    "recall",
    "f1",
    "max_row_diff",
    "max_logit_diff",
    "run_dir",
)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def accelerator_status(name: str) -> tuple[torch.device | None, str]:
    """The device for ``name`` and its description, or None and why it is unavailable."""
    if name == "cpu":
        return torch.device("cpu"), "cpu"
    if name == "cuda":
        if torch.cuda.is_available():
            return torch.device("cuda", 0), torch.cuda.get_device_name(0)
        return None, "no CUDA device"
    if name == "mps":
        if torch.backends.mps.is_available():
            return torch.device("mps"), "Apple MPS"
        return None, "no MPS device"
    raise ValueError(f"unknown accelerator {name!r}; use cpu, cuda or mps")


@torch.no_grad()
def evaluate(net: MLPParameters, x: Tensor, y: Tensor, device: torch.device, dtype: torch.dtype) -> dict:
    """Logits and macro P/R/F1 of a copy of ``net`` on ``device`` in ``dtype`` (metrics on CPU)."""
    copy_net = copy.deepcopy(net).to(device=device, dtype=dtype)
    logits = copy_net(x.to(device=device, dtype=dtype)).cpu()
    values = metric_collection(net.spec)(*metric_inputs(net.spec, logits, y.cpu()))
    return {"logits": logits.double(), **{m: float(values[m]) for m in ("precision", "recall", "f1")}}


def append_rows(table: Path, rows: list[dict]) -> None:
    """Append to the CSV (header checked) and rewrite the markdown twin from the whole CSV."""
    table.parent.mkdir(parents=True, exist_ok=True)
    if table.exists():
        with table.open(newline="") as f:
            header = next(csv.reader(f), None)
        if header is not None and tuple(header) != COLUMNS:
            raise ValueError(
                f"{table}: its header {header} differs from this version's columns {list(COLUMNS)}; "
                "move the old table away or set a new table_path."
            )
    new_file = not table.exists() or table.stat().st_size == 0
    with table.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerows(rows)
    with table.open(newline="") as f:
        all_rows = list(csv.DictReader(f))
    table.with_suffix(".md").write_text(comparison_markdown(all_rows))


def comparison_markdown(rows: list[dict]) -> str:
    return markdown_table(COLUMNS, [[row[c] for c in COLUMNS] for row in rows]) + "\n"


TEXT_COLUMNS = ("accelerator", "device", "dtype", "precision", "recall", "f1", "max_logit_diff")


def text_report(rows: list[dict], missing: str, table: Path) -> str:
    """For TensorBoard's Text tab: what the rows share once, then a table of what differs between them."""
    first = rows[0]
    shared = f"**{first['model']}**, {first['net']}, on {first['host']} at {first['timestamp']}"
    differing = markdown_table(TEXT_COLUMNS, [[row[c] for c in TEXT_COLUMNS] for row in rows])
    return (
        f"{shared}\n\n{differing}\n\nLargest P/R/F1 difference between rows: {first['max_row_diff']}. "
        f"Unavailable here: {missing}. Every run's rows: {table} (and .md)."
    )


class F1Comparison(pl.Callback):
    """After test: the final weights on each available accelerator x {float32, float64}, one table row each.

    ``max_row_diff`` is the largest difference of P, R or F1 between this run's rows;
    ``max_logit_diff`` the largest |logit - logit on cpu float64|. ``table_path`` defaults to
    ``f1_comparison.csv`` in the logger's save_dir (e.g. ``runs/``); a ``.md`` twin sits next to it.
    """

    def __init__(
        self,
        table_path: str | None = None,
        accelerators: list[str] | None = None,
        dtypes: list[str] | None = None,
    ) -> None:
        self.table_path = table_path
        self.accelerators = accelerators or ["cpu", "cuda", "mps"]
        self.dtypes = dtypes or ["float32", "float64"]
        unknown = [d for d in self.dtypes if d not in DTYPES]
        if unknown:
            raise ValueError(f"F1Comparison dtypes {unknown} unknown; use float32 and/or float64")
        self.rows: list[dict] = []
        self.unavailable: dict[str, str] = {}

    def resolve_table(self, trainer: pl.Trainer) -> Path:
        if self.table_path:
            return Path(self.table_path)
        root = trainer.loggers[0].save_dir if trainer.loggers and trainer.loggers[0].save_dir else None
        return Path(root or trainer.default_root_dir) / "f1_comparison.csv"

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fast_dev_run:  # a smoke test's weights have no place in the table, and it writes no files
            return
        run_dir = trainer.log_dir or ""  # a broadcast under DDP: every rank asks before rank 0 goes on alone
        if not trainer.is_global_zero:  # one evaluation, one writer
            return
        net: MLPParameters | None = getattr(pl_module, "net", None)
        loader = datamodule_loader(trainer, "test")
        if net is None or not net.spec.is_classifier or loader is None:
            rank_zero_warn("F1Comparison needs a classifier net and a datamodule with a test split; skipped.")
            return
        x, y = collect_rows(loader)
        results: dict[tuple[str, str], dict] = {}
        descriptions: dict[str, str] = {}
        self.unavailable = {}
        for name in self.accelerators:
            device, description = accelerator_status(name)
            if device is None:
                self.unavailable[name] = description
                continue
            descriptions[name] = description
            for dtype_name in self.dtypes:
                if name == "mps" and dtype_name == "float64":
                    self.unavailable["mps float64"] = "MPS has no float64"
                    continue
                results[(name, dtype_name)] = evaluate(net, x, y, device, DTYPES[dtype_name])
        self.rows = self._rows(pl_module, net, results, descriptions, run_dir)
        table = self.resolve_table(trainer)
        append_rows(table, self.rows)
        self._report(trainer, table, epochs_done(trainer, pl_module))

    def _rows(
        self,
        pl_module: pl.LightningModule,
        net: MLPParameters,
        results: dict[tuple[str, str], dict],
        descriptions: dict[str, str],
        run_dir: str,
    ) -> list[dict]:
        reference = results.get(("cpu", "float64"), next(iter(results.values())))["logits"]
        metrics = ("precision", "recall", "f1")
        spread = max(max(r[m] for r in results.values()) - min(r[m] for r in results.values()) for m in metrics)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return [
            {
                "timestamp": stamp,
                "host": socket.gethostname(),
                "model": type(pl_module).__name__,
                "net": net.spec.summary,
                "accelerator": accelerator,
                "device": descriptions[accelerator],
                "dtype": dtype_name,
                **{m: f"{r[m]:.6f}" for m in metrics},
                "max_row_diff": f"{spread:.3g}",
                "max_logit_diff": f"{(r['logits'] - reference).abs().max().item():.3g}",
                "run_dir": run_dir,
            }
            for (accelerator, dtype_name), r in results.items()
        ]

    def _report(self, trainer: pl.Trainer, table: Path, epochs: int) -> None:
        text = comparison_markdown(self.rows)
        missing = ", ".join(f"{k} ({why})" for k, why in self.unavailable.items()) or "none"
        detail(f"F1 comparison of the final weights across accelerators and dtypes:\n{text}Unavailable: {missing}.")
        rows = ", ".join(f"{row['accelerator']} {row['dtype']}" for row in self.rows)
        say(
            f"F1 comparison ({rows}): largest P/R/F1 difference between them {self.rows[0]['max_row_diff']}; "
            f"appended to {table} (and .md)"
        )
        writer = tensorboard_writer(trainer)
        if writer is not None:
            writer.add_text("f1_comparison", text_report(self.rows, missing, table), epochs)
