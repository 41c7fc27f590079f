"""The sweep's arithmetic in its every form ends where each member's own `train.py fit` ends: members laid out
member-last (einsums over thousands of tiny nets), MNIST-size members on torch tensors reading one shared batch
(the first layer one GEMM for all members) or each their own rows, and the product forms themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from commands.sweep import run_sweep
from models.layers import xp
from models.sweep_module import SweepModule, members_last_copy
from tests.conftest import needs_debian_fashion
from tests.test_sweep import QUIET, StopAfterFirstBlock, assert_members_equal_single_runs, sweep_file, week04
from train import make_cli

ROOT = Path(__file__).resolve().parents[1]


def single_fit(args: list[str], values: dict[str, object], root: Path) -> list[np.ndarray]:
    """Every weight and bias of the member's own fit, in layer order."""
    overrides = [f"--trainer.default_root_dir={root}"]
    for key, value in values.items():
        keys = ["model.init_args.net.init_seed", "data.init_args.seed"] if key == "seed" else [key]
        overrides += [f"--{k}={value}" for k in keys]
    cli = make_cli([*args, *overrides, *QUIET], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return [p.detach().double().numpy() for layer in cli.model.net.layers for p in (layer.weight, layer.bias)]


def member_parameters(result, name: str) -> list[np.ndarray]:
    weights, biases = result.final_weights(name), result.final_biases(name)
    return [p.astype(np.float64) for pair in zip(weights, biases) for p in pair]


def largest_member_difference(result, args: list[str], names: list[str]) -> float:
    members = {m.name: m for stack, _ in result.stacks for m in stack}
    worst = 0.0
    for name in names:
        single = single_fit(args, members[name].values, result.run_dir / "single" / name)
        for a, b in zip(member_parameters(result, name), single):
            assert a.shape == b.shape
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


# ---- many tiny members, laid out member-last ------------------------------------------------------------------


@pytest.fixture
def members_last_from_two(monkeypatch) -> None:
    """Lay out every NumPy stack member-last, as a grid of thousands is, so that small grids test that form."""
    monkeypatch.setattr("models.sweep_module.MEMBERS_LAST_MIN", 2)


@pytest.mark.parametrize(
    "optimizer",
    [
        [],
        ["--model.init_args.optimizer.init_args.momentum=0.9", "--model.init_args.optimizer.init_args.nesterov=true"],
        ["--model.init_args.optimizer=torch.optim.Adam", "--model.init_args.optimizer.init_args.lr=0.01"],
    ],
    ids=["sgd", "momentum", "adam"],
)
def test_members_laid_out_last_equal_single_runs(tmp_path, monkeypatch, members_last_from_two, optimizer) -> None:
    """Padded widths, biases, each member's own data order (seeds) and one update per example or per 8 rows."""
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.optimizer.init_args.lr: [0.02, 0.2]
  model.init_args.net.hidden_sizes: [[3, 3], [5, 4]]
  seed: [0, 1]
"""
    rows = ["--model.init_args.rows_per_update=8"] if optimizer else []
    args = week04(tmp_path, *optimizer, *rows, "--model.init_args.net.bias=true")
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    module = result.stacks[0][1]
    assert module.members_last and xp.members_last(module.weights[0].detach().numpy())
    assert_members_equal_single_runs(result, args, ["lr0.02-h5x4-seed1", "lr0.2-h3x3-seed0"])
    for name in ("lr0.02-h5x4-seed1", "lr0.2-h3x3-seed0"):
        assert not np.allclose(result.final_biases(name)[0], 0)  # the biases trained too


def test_a_shared_batch_laid_out_last_equals_single_runs(tmp_path, monkeypatch, members_last_from_two) -> None:
    """Learning rates only: every member reads the same rows, a batch without a member dimension."""
    monkeypatch.chdir(tmp_path)
    args = week04(tmp_path)
    result = run_sweep(
        make_cli, args, sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.05, 0.3]\n")
    )
    assert result.stacks[0][1].members_last
    assert_members_equal_single_runs(result, args, ["lr0.05", "lr0.3"])


def test_a_stack_laid_out_last_resumes_exactly(tmp_path, monkeypatch, members_last_from_two) -> None:
    """The checkpoint holds strided parameters and momentum buffers; the resumed stack lays them out again."""
    monkeypatch.chdir(tmp_path)
    args = week04(tmp_path, "--trainer.max_epochs=4", "--model.init_args.optimizer.init_args.momentum=0.9")
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.01, 0.1]\nsnapshots: [2]\n")
    whole = run_sweep(make_cli, args, grid)
    cut = run_sweep(make_cli, args, grid, callbacks=[StopAfterFirstBlock()])
    resumed = run_sweep(make_cli, args, grid, resume=str(cut.run_dir))
    assert resumed.stacks[0][1].members_last
    for name in ("lr0.01", "lr0.1"):
        for a, b in zip(whole.final_weights(name), resumed.final_weights(name)):
            np.testing.assert_array_equal(a, b)
    assert resumed.rows == whole.rows


def test_a_small_stack_keeps_its_members_first(tmp_path, monkeypatch) -> None:
    """Below MEMBERS_LAST_MIN members the stacked ``@`` costs less than einsums: the layout stays as built."""
    monkeypatch.chdir(tmp_path)
    result = run_sweep(make_cli, week04(tmp_path), sweep_file(tmp_path, "grid:\n  seed: [0, 1]\n"))
    module = result.stacks[0][1]
    assert not module.members_last and module.weights[0].is_contiguous()


def test_tensors_standing_in_for_a_gpu_on_a_shared_batch_equal_single_runs(tmp_path, monkeypatch) -> None:
    """On a CUDA device a stack trains on torch tensors whatever its size: a shared batch's first layer is then one
    GEMM for every member, with the biases folded in (``addmm``). Tensors on the CPU stand in for the device."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(SweepModule, "arrays", lambda self, t: t.detach())
    grid = "grid:\n  model.init_args.optimizer.init_args.lr: [0.05, 0.3]\n"
    grid += "  model.init_args.net.hidden_sizes: [[3, 3], [5, 4]]\n"
    args = week04(tmp_path, "--model.init_args.net.bias=true", "--model.init_args.rows_per_update=4")
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert isinstance(result.stacks[0][1].stacked_params()[0], torch.Tensor)
    assert largest_member_difference(result, args, ["lr0.05-h5x4", "lr0.3-h3x3"]) <= 1e-12


# ---- the product forms, against the plain matrix products ---------------------------------------------------


def test_every_product_form_computes_the_plain_matrix_product() -> None:
    """Member-last einsums (NumPy), one GEMM for a shared batch (torch) and the single-row outer product, each
    against ``@`` on the same numbers; the einsum's weight gradient comes back in the weight's layout."""
    rng = np.random.default_rng(0)
    members, rows, fan_in, out = 5, 4, 3, 2
    w = rng.normal(size=(members, out, fan_in))
    b = rng.normal(size=(members, out))
    for a in (rng.normal(size=(members, rows, fan_in)), rng.normal(size=(rows, fan_in)), rng.normal(size=(1, fan_in))):
        n = a.shape[-2]
        dz = rng.normal(size=(members, n, out))
        expected = (a @ w.mT + b[:, None, :], dz.mT @ a, dz @ w)
        w_last, b_last = members_last_copy(w), members_last_copy(b)
        assert xp.members_last(w_last) and not xp.members_last(w)
        einsum = (
            xp.affine(a, w_last, b_last, einsum=True),
            xp.weight_grad(dz, a, w_last, einsum=True),
            xp.input_grad(dz, w_last, einsum=True),
        )
        assert xp.members_last(einsum[1])
        shared = a.ndim == 2
        torch_forms = (
            xp.affine(torch.from_numpy(a), torch.from_numpy(w), torch.from_numpy(b)),
            xp.weight_grad(torch.from_numpy(dz), torch.from_numpy(a), torch.from_numpy(w)),
            xp.input_grad(torch.from_numpy(dz), torch.from_numpy(w)),
        )
        numpy_forms = (xp.affine(a, w, b), xp.weight_grad(dz, a, w), xp.input_grad(dz, w))
        for got in (*einsum, *numpy_forms, *torch_forms):
            assert got.shape in [e.shape for e in expected]
        for forms in (einsum, numpy_forms, torch_forms):
            for got, want in zip(forms, expected):
                np.testing.assert_allclose(np.asarray(got), want, rtol=1e-13, atol=1e-14, err_msg=f"shared={shared}")


@pytest.mark.parametrize("own_rows", [False, True], ids=["shared-row", "own-rows"])
def test_a_stack_laid_out_last_stays_so_through_every_layer(own_rows: bool) -> None:
    """Every gradient of a member-last stack comes back member-last, one-hot labels and per-member rows included:
    one array in the other layout would make every operation after it stride across members."""
    from models.manual_net import LayerChain
    from models.spec import MLPSpec

    rng = np.random.default_rng(0)
    spec = MLPSpec(hidden_sizes=[3, 3], bias=True)
    members = 70
    weights = []
    for fan_in, fan_out in zip(spec.layer_sizes[:-1], spec.layer_sizes[1:]):
        w, b = rng.normal(size=(members, fan_out, fan_in)), rng.normal(size=(members, fan_out))
        weights.append((members_last_copy(w), members_last_copy(b)))
    x, y = rng.normal(size=(1, 2)), rng.integers(0, 2, size=1)
    if own_rows:
        x, y = members_last_copy(np.repeat(x[None], members, 0)), members_last_copy(np.repeat(y[None], members, 0))
    chain = LayerChain(spec, weights)
    chain.loss(x, y)
    grads = chain.backward()
    assert all(xp.members_last(g) for g in grads[0::2])  # the weights' gradients
    assert all(g.strides[0] == g.itemsize for g in grads[1::2])  # the biases', (M, out)


def test_a_step_keeps_each_update_s_losses_only_until_its_epochs_are_summed(tmp_path, monkeypatch) -> None:
    """With room for one epoch's losses (400 updates x 2 members) a block of 3 epochs runs as 3 loops, each keeping
    no logits, and gives the same per-epoch losses and weights as one loop over the block."""
    from models.engine import update_loop

    monkeypatch.chdir(tmp_path)
    grid = sweep_file(tmp_path, "grid:\n  seed: [0, 1]\n")
    whole = run_sweep(make_cli, week04(tmp_path), grid)
    kept: list[int] = []

    def recording(*args, **kwargs):
        losses, logits = update_loop(*args, **kwargs)
        kept.append(len(logits))
        return losses, logits

    monkeypatch.setattr("models.sweep_module.update_loop", recording)
    monkeypatch.setattr("models.sweep_module.LOSSES_KEPT", 400 * 2)
    split = run_sweep(make_cli, week04(tmp_path), grid)
    assert kept == [0, 0, 0]
    np.testing.assert_array_equal(np.stack(split.stacks[0][1].train_losses), np.stack(whole.stacks[0][1].train_losses))
    for a, b in zip(split.final_weights("seed1"), whole.final_weights("seed1")):
        np.testing.assert_array_equal(a, b)


# ---- MNIST-size members: torch tensors, one GEMM for a shared batch ------------------------------------------


def fashion_slice(tmp_path: Path, precision: str, *extra: str) -> list[str]:
    """Fashion-MNIST with 600 training rows (val_fraction 0.99), 784-32-16-10 ReLU with biases, 2 epochs of
    batches of 256 cut into updates of 128 rows (2 + 2 + 1 updates per epoch)."""
    return [
        "--config", str(ROOT / "configs/fashion_mnist.yaml"), f"--trainer.precision={precision}",
        "--trainer.max_epochs=2", "--trainer.limit_val_batches=0", f"--data.init_args.data_dir={tmp_path / 'data'}",
        "--data.init_args.val_fraction=0.99", "--data.init_args.batch_size=256",
        "--model.init_args.net.hidden_sizes=[32, 16]", *extra,
    ]  # fmt: skip


@needs_debian_fashion
@pytest.mark.slow
@pytest.mark.parametrize(
    "seeds,streamed", [(False, False), (True, False), (False, True)], ids=["shared-batch", "own-rows", "streamed"]
)
def test_fashion_mnist_members_equal_their_own_fits_in_float64(tmp_path, monkeypatch, seeds, streamed) -> None:
    """Learning rates and padded widths on one shared batch (the first layer one GEMM for every member), or with
    their own data orders (each member its rows), each epoch in one step or streamed a batch per step (as the
    whole data set is): each member ends where its own fit ends, to 1e-10."""
    monkeypatch.chdir(tmp_path)
    if streamed:
        monkeypatch.setattr("commands.sweep_stack.epochs_per_block", lambda *args: 0)
    grid = "grid:\n  model.init_args.optimizer.init_args.lr: [0.05, 0.2]\n  model.init_args.net.hidden_sizes: "
    grid += "[[32, 16], [24, 16]]\n" + ("  seed: [0, 1]\n" if seeds else "")
    args = fashion_slice(tmp_path, "64-true")
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    module: SweepModule = result.stacks[0][1]
    assert not module.numpy_path and isinstance(module.stacked_params()[0], torch.Tensor)
    assert module.trainer.train_dataloader.grouped() is not streamed  # streamed: one batch of 256 rows per step
    names = ["lr0.2-h24x16-seed1", "lr0.05-h32x16-seed0"] if seeds else ["lr0.2-h24x16", "lr0.05-h32x16"]
    assert largest_member_difference(result, args, names) <= 1e-10


@needs_debian_fashion
@pytest.mark.slow
def test_fashion_mnist_members_in_float32_differ_from_their_fits_by_rounding_only(tmp_path, monkeypatch) -> None:
    """float32: the stacked GEMMs add in another order than a single net's, so members differ from their fits by
    float32 rounding carried through 10 updates: a few units in the last place of weights of order 0.1, far below
    what a changed update would move (W12 reports the difference after a whole epoch)."""
    monkeypatch.chdir(tmp_path)
    grid = "grid:\n  model.init_args.optimizer.init_args.lr: [0.05, 0.1, 0.2, 0.3]\n"
    args = fashion_slice(tmp_path, "32-true")
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert largest_member_difference(result, args, ["lr0.05", "lr0.3"]) <= 2e-6
