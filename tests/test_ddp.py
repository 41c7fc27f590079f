"""DDP gives the single-process answer: 2 CPU processes (gloo) against 1, for both modules.

The multi-process runs are ``tests/ddp_run.py`` in subprocesses (the ``ddp`` strategy relaunches
its own command line, which must not be pytest's); the 1-process references run in-process. For
``ddp`` the test starts both ranks at once, as torchrun or srun would (Lightning then launches
nothing), so they import in parallel; the CLI test goes through Lightning's own launcher.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from datamodules.tensor_loader import TensorBatchLoader, rank_batch_slices
from tests import ddp_run
from tests.conftest import ROOT

GLOBAL_BATCH = 16  # 400 week-4 rows: 25 steps per epoch, 8 rows per rank on 2 ranks
TIMEOUT = 600  # a hung collective fails the test instead of CI


# ---- sharding, no processes needed --------------------------------------------------------------
def per_rank_batches(loader: TensorBatchLoader, world_size: int, monkeypatch) -> list[list[torch.Tensor]]:
    batches = []
    for rank in range(world_size):
        monkeypatch.setattr("datamodules.tensor_loader.rank_and_world_size", lambda r=rank: (r, world_size))
        batches.append([x for x, _ in loader])
        assert len(loader) == len(batches[-1])
    return batches


@pytest.mark.parametrize(("n", "per_rank", "world_size"), [(400, 8, 2), (37, 4, 2), (30, 4, 3), (17, 8, 2)])
def test_ranks_split_each_single_process_batch_in_order(n: int, per_rank: int, world_size: int, monkeypatch) -> None:
    x = torch.arange(n, dtype=torch.float64).reshape(n, 1)
    loader = TensorBatchLoader((x, x), per_rank, shuffle=True, seed=7)
    loader.set_epoch(1)
    single = [b for b, _ in TensorBatchLoader((x, x), per_rank * world_size, shuffle=True, seed=7).unsharded()]
    ranks = per_rank_batches(loader, world_size, monkeypatch)
    assert len({len(batches) for batches in ranks}) == 1  # same step count on every rank, or DDP hangs
    assert all(len(b) > 0 for batches in ranks for b in batches)
    glued = [torch.cat(step) for step in zip(*ranks)]
    # every row exactly once per epoch, epoch 1's permutation, in the order one process reads it
    order = np.random.default_rng(7)
    order.permutation(n)
    np.testing.assert_array_equal(torch.cat(glued).reshape(-1).numpy(), order.permutation(n))
    if (n % (per_rank * world_size)) % world_size == 0:  # the exact case: same global batches
        loader.set_epoch(0)
        glued = [torch.cat(step) for step in zip(*per_rank_batches(loader, world_size, monkeypatch))]
        assert len(glued) == len(single) and all(torch.equal(a, b) for a, b in zip(glued, single))


def test_uneven_tail_is_split_evenly_or_folded_never_empty() -> None:
    # 37 rows, 4 per rank, 2 ranks: 4 full global blocks, then 5 rows split 3 + 2
    assert [rank_batch_slices(37, 4, r, 2, False)[-1] for r in (0, 1)] == [slice(32, 35), slice(35, 37)]
    # 17 rows, 8 per rank, 2 ranks: 1 leftover row joins the previous block, split 9 + 8
    assert [rank_batch_slices(17, 8, r, 2, False) for r in (0, 1)] == [[slice(0, 9)], [slice(9, 17)]]
    assert [rank_batch_slices(37, 4, r, 2, True) for r in (0, 1)][1][-1] == slice(28, 32)  # drop_last
    with pytest.raises(ValueError, match="3 rows cannot be shared by 4 ranks"):
        rank_batch_slices(3, 1, 0, 4, False)


# ---- whole runs -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path, module: str, devices: int, strategy: str, *extra: str) -> dict:
    out = tmp_path / f"{module}_{strategy}_{devices}.json"
    args = ["--module", module, "--devices", str(devices), "--strategy", strategy]
    args += ["--global-batch", str(GLOBAL_BATCH), "--out", str(out), *extra]
    cmd = [sys.executable, str(ROOT / "tests" / "ddp_run.py"), *args]
    if devices == 1:
        ddp_run.main(args)
    elif strategy == "ddp":  # every rank started here, with the variables torchrun would set
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), NODE_RANK="0")
        logs = [(tmp_path / f"rank{r}.log").open("w+") for r in range(devices)]
        ranks = [
            subprocess.Popen(cmd, cwd=tmp_path, env=dict(env, LOCAL_RANK=str(r)), stdout=log, stderr=log, text=True)
            for r, log in enumerate(logs)
        ]
        codes = [rank.wait(timeout=TIMEOUT) for rank in ranks]
        for log in logs:
            log.seek(0)
        assert codes == [0] * devices, "\n".join(log.read()[-3000:] for log in logs)
    else:
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, dict]:
    """1-process references with the same global batch and data order."""
    tmp = tmp_path_factory.mktemp("single")
    return {module: launch(tmp, module, 1, "auto") for module in ("manual", "native")}


def assert_same_training(run: dict, reference: dict) -> None:
    assert run["world_size"] == 2 and run["wrapped_in_ddp"]
    assert run["global_step"] == reference["global_step"] == 2 * 400 // GLOBAL_BATCH
    # the ranks saw the single process's global batches, split in rank order
    rank0, rank1 = (r["rows"] for r in run["per_rank"])
    assert [a + b for a, b in zip(rank0, rank1)] == reference["per_rank"][0]["rows"]
    for name, want in reference["weights"].items():
        for rank in run["per_rank"]:  # every rank holds the same weights
            np.testing.assert_allclose(np.array(rank["weights"][name]), np.array(want), rtol=0, atol=1e-6)
    # validation (on the test split) after the last epoch: synced metrics of the same final weights
    assert run["val"]["val/f1"] == reference["val"]["val/f1"] > 0.9
    # only rank 0 writes files
    assert run["per_rank"][0]["files_written"] == ["weights_initial.json", "weights_final.json"]
    assert run["per_rank"][1]["files_written"] == []
    assert all(rank["shared_metric_states"] == [] for rank in run["per_rank"])


def assert_same_run(run: dict, reference: dict) -> None:
    assert_same_training(run, reference)
    # test metrics cover the whole test set: 100 rows per rank, synced to the single-process values
    assert run["test_rows_per_rank"] == [100, 100]
    assert run["confusion"] == reference["confusion"] and np.sum(run["confusion"]) == 200
    assert run["test"]["test/f1"] == reference["test"]["test/f1"] > 0.9
    for key in ("test/precision", "test/recall", "test/accuracy", "test/loss"):
        assert run["test"][key] == pytest.approx(reference["test"][key], rel=1e-6)


@pytest.mark.ddp
def test_manual_module_under_ddp_equals_one_process(tmp_path, single) -> None:
    run = launch(tmp_path, "manual", 2, "ddp")
    assert_same_run(run, single["manual"])
    for rank in run["per_rank"]:
        # hand-written .grad never reaches DDP's reducer; grad_sync averages it: one collective per step
        assert rank["reducer_buckets"] == 0
        assert rank["grad_sync_all_reduces"] == run["global_step"]


@pytest.mark.ddp
def test_native_module_under_ddp_equals_one_process(tmp_path, single) -> None:
    run = launch(tmp_path, "native", 2, "ddp")
    assert_same_run(run, single["native"])
    for rank in run["per_rank"]:  # autograd's gradients go through DDP's reducer, and only there
        assert rank["reducer_buckets"] == run["global_step"]
        assert rank["grad_sync_all_reduces"] == 0


@pytest.mark.ddp
@pytest.mark.parametrize("module", ["manual", "native"])
def test_one_cycle_schedule_under_ddp_equals_one_process(tmp_path, module: str) -> None:
    """Each rank steps its own schedule once per update; they stay in step with one process."""
    reference = launch(tmp_path / "single", module, 1, "auto", "--one-cycle", "--no-test")
    run = launch(tmp_path, module, 2, "ddp", "--one-cycle", "--no-test")
    assert_same_training(run, reference)
    assert run["learning_rates"] == reference["learning_rates"] * 2  # both ranks end on the same rate


@pytest.mark.ddp
def test_manual_module_under_ddp_spawn_equals_one_process(tmp_path, single) -> None:
    run = launch(tmp_path, "manual", 2, "ddp_spawn", "--no-test")  # test would spawn 2 more processes
    assert_same_training(run, single["manual"])
    assert all(rank["grad_sync_all_reduces"] == run["global_step"] for rank in run["per_rank"])


@pytest.mark.ddp
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices for a 2-GPU NCCL run")
def test_manual_module_on_two_gpus_equals_one_process(tmp_path, single) -> None:
    out = tmp_path / "gpu.json"
    args = ["--module", "manual", "--devices", "2", "--strategy", "ddp", "--accelerator", "gpu"]
    args += ["--global-batch", str(GLOBAL_BATCH), "--out", str(out)]
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "ddp_run.py"), *args], cwd=tmp_path, timeout=TIMEOUT)
    assert done.returncode == 0
    run = json.loads(out.read_text())
    assert_same_run(run, single["manual"])


# ---- trainer presets and the CLI ------------------------------------------------------------------
PRESETS = {"cpu": ("cpu", 1, "auto"), "gpu": ("gpu", 1, "auto"), "ddp": ("gpu", -1, "ddp"), "ddp_cpu": ("cpu", 2, None)}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_trainer_presets_parse_as_the_cli_reads_them(name: str) -> None:
    import lightning.pytorch as pl
    from lightning.pytorch.cli import LightningArgumentParser

    parser = LightningArgumentParser()
    parser.add_lightning_class_args(pl.Trainer, "trainer")
    trainer = parser.parse_args(["--trainer", str(ROOT / "configs" / "trainer" / f"{name}.yaml")]).trainer
    accelerator, devices, strategy = PRESETS[name]
    assert (trainer.accelerator, trainer.devices, trainer.num_nodes) == (accelerator, devices, 1)
    if strategy is None:
        assert trainer.strategy.class_path.endswith("DDPStrategy")
        assert trainer.strategy.init_args.process_group_backend == "gloo"
    else:
        assert trainer.strategy == strategy


@pytest.mark.ddp
def test_cli_with_ddp_cpu_preset_matches_one_process(tmp_path) -> None:
    """The README's command on 2 CPU processes, against the same config on one with twice the batch."""
    from callbacks.weights_export import notebook_weights
    from tests.conftest import quiet_trainer
    from train import make_cli

    common = ["--config", str(ROOT / "configs" / "week04.yaml"), "--model.rows_per_update", "null"]
    common += ["--trainer.max_epochs", "1"]
    common += ["--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
    cmd = [sys.executable, str(ROOT / "train.py"), "fit", *common]
    cmd += ["--trainer", str(ROOT / "configs" / "trainer" / "ddp_cpu.yaml"), "--data.batch_size", "8"]
    cmd += ["--verbose", "true"]  # Lightning's start-up lines, which name the processes
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "MEMBER: 2/2" in done.stdout + done.stderr
    assert "terminate called" not in done.stdout + done.stderr  # the process group is destroyed before exit
    assert "sync_dist" not in done.stdout + done.stderr  # epoch metrics are logged as the synced values they are
    runs = list((tmp_path / "runs" / "week04").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # one run directory: rank 1 made none
    saved = (runs[0] / "config.yaml").read_text()
    assert "DDPStrategy" in saved and "devices: 2" in saved
    ddp_weights = json.loads((runs[0] / "weights_final.json").read_text())["weights"]

    cli = make_cli(
        [*common, "--trainer", str(ROOT / "configs" / "trainer" / "cpu.yaml"), "--data.batch_size", "16"], run=False
    )
    assert cli.trainer.world_size == 1
    quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(cli.model, datamodule=cli.datamodule)
    for name, want in notebook_weights(cli.model).items():
        np.testing.assert_allclose(np.array(ddp_weights[name]), want, rtol=0, atol=1e-6)
