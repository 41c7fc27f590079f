"""One week-4 fit + test for the DDP tests; rank 0 writes what the tests compare to a JSON file.

A script, not a pytest function, because the ``ddp`` strategy starts the other ranks by running the
same command line again, which inside pytest would re-run the test session:

    python tests/ddp_run.py --module manual --devices 2 --strategy ddp --global-batch 16 --out run.json

Everything is recorded from a callback, so it works the same in the launching process (``ddp``),
in spawned workers (``ddp_spawn``) and in a single process.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel
from torchmetrics import Metric

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbacks.weights_export import WeightsExport, notebook_weights  # noqa: E402
from datamodules.week04 import Week04DataModule  # noqa: E402
from models import grad_sync  # noqa: E402
from models.lightning_modules import ManualModule, NativeModule  # noqa: E402
from models.spec import MLPSpec  # noqa: E402

# The week-4 net with biases, so the flattened gradient bucket mixes weight and bias tensors.
SPEC = dict(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=True, init_std=0.2)
MODULES = {"manual": ManualModule, "native": NativeModule}


class CountingDist:
    """Stands in for ``torch.distributed`` inside :mod:`models.grad_sync` to count its all-reduces."""

    def __init__(self) -> None:
        self.all_reduce_calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(dist, name)

    def all_reduce(self, *args: object, **kwargs: object) -> object:
        self.all_reduce_calls += 1
        return dist.all_reduce(*args, **kwargs)


class RunRecorder(pl.Callback):
    """Per rank: the training rows it saw, collectives issued, files written; rank 0 gathers and saves."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: list[list[list[float]]] = []
        self.reducer_buckets = 0
        self.wrapped_in_ddp = False
        self.shared_metric_states: list[str] = []
        self.counting = CountingDist()
        self.files_written: list[str] = []
        self._test_record: dict[str, object] = {}
        self._write_text = pathlib.Path.write_text

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        grad_sync.dist = self.counting
        recorder, write_text = self, self._write_text

        def recording_write_text(path: pathlib.Path, *args: object, **kwargs: object) -> int:
            recorder.files_written.append(path.name)
            return write_text(path, *args, **kwargs)

        pathlib.Path.write_text = recording_write_text

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        grad_sync.dist = dist
        pathlib.Path.write_text = self._write_text

    def _count_bucket(self, state, bucket):  # unannotated: DDP rejects string annotations on comm hooks
        self.reducer_buckets += 1
        return allreduce_hook(None, bucket)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.wrapped_in_ddp = isinstance(trainer.strategy.model, DistributedDataParallel)
        # ddp_spawn pickles the module through shared memory: no metric may count into another rank's tensor
        self.shared_metric_states = [
            f"{name}.{state}"
            for name, metric in pl_module.named_modules()
            if isinstance(metric, Metric)
            for state in metric._defaults
            if isinstance(getattr(metric, state), torch.Tensor) and getattr(metric, state).is_shared()
        ]
        if self.wrapped_in_ddp:
            trainer.strategy.model.register_comm_hook(None, self._count_bucket)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.rows.append(batch[0].tolist())

    def _gather(self, obj: object) -> list[object]:
        if not (dist.is_available() and dist.is_initialized()):
            return [obj]
        gathered: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, obj)
        return gathered

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        weights = {k: v.tolist() for k, v in notebook_weights(pl_module).items()}
        per_rank = self._gather(
            {
                "weights": weights,
                "rows": self.rows,
                "reducer_buckets": self.reducer_buckets,
                "grad_sync_all_reduces": self.counting.all_reduce_calls,
                "files_written": list(self.files_written),
                "shared_metric_states": self.shared_metric_states,
            }
        )
        record = dict(
            world_size=trainer.world_size,
            strategy=type(trainer.strategy).__name__,
            wrapped_in_ddp=self.wrapped_in_ddp,
            global_step=trainer.global_step,
            learning_rates=self._gather(trainer.optimizers[0].param_groups[0]["lr"]),
            weights=weights,
            per_rank=per_rank,
            val={k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
        )
        self._save(trainer, record)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._test_record = dict(
            confusion=pl_module.test_confusion.compute().tolist(),
            test_rows_per_rank=self._gather(int(pl_module.test_confusion.confmat.sum())),
        )

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        self._save(trainer, dict(self._test_record, test=metrics))

    def _save(self, trainer: pl.Trainer, record: dict[str, object]) -> None:
        """Merge into the output file: under ``ddp_spawn`` fit and test run in different worker processes."""
        if trainer.is_global_zero:
            saved = json.loads(self.out.read_text()) if self.out.exists() else {}
            self._write_text(self.out, json.dumps(dict(saved, **record)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", choices=sorted(MODULES), required=True)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--global-batch", type=int, default=16, help="rows per optimiser step over all ranks")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-test", action="store_true", help="fit only (validation runs on the test split)")
    parser.add_argument("--one-cycle", action="store_true", help="OneCycleLR up to lr 2, stepped every update")
    args = parser.parse_args(argv)
    if args.global_batch % args.devices:
        parser.error(f"--global-batch {args.global_batch} is not a multiple of --devices {args.devices}")

    optimizer = partial(torch.optim.SGD, lr=0.5, momentum=0.9)  # picklable, for ddp_spawn
    one_cycle = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=2.0, cycle_momentum=False)
    schedule = one_cycle if args.one_cycle else None
    module = MODULES[args.module](MLPSpec(**SPEC), optimizer=optimizer, lr_scheduler=schedule)
    data = Week04DataModule(batch_size=args.global_batch // args.devices)  # no paths: the notebook's synthetic data
    recorder = RunRecorder(args.out)
    trainer = pl.Trainer(
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=args.strategy,
        precision="64-true",
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=args.out.parent,
        callbacks=[WeightsExport(print_final=False), recorder],
    )
    trainer.fit(module, datamodule=data)
    if not args.no_test:
        trainer.test(module, datamodule=data, verbose=False)


if __name__ == "__main__":
    main()
