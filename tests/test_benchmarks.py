"""Benchmarks measure what they say: W4's hand-derived LeNet update computes autograd's gradients, W3's
stacked NumPy floor trains the same grid as the sweep, and W11's candidate forms of one update make the same
update."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import w4_lenet_update
from benchmarks.baselines import lab4_stacked_numpy_floor
from benchmarks.sweeps import LAB4_HIDDEN, LAB4_LRS, QUIET, ROOT
from benchmarks.w11_sweep_command import candidate_updates
from commands.sweep import run_sweep
from train import make_cli


@pytest.mark.slow
def test_lenet_update_benchmark_runs_and_agrees_with_autograd() -> None:
    result = w4_lenet_update.run(repeats=1)
    assert set(result["per_update_ms"]) == {"hand_derived", "autograd_native", "autograd_plain"}
    assert all(ms > 0 for ms in result["per_update_ms"].values())
    assert result["max_rel_grad_diff_float32"] < 1e-4  # float32 rounding only


def test_the_stacked_numpy_floor_trains_lab4s_grid_as_the_sweep_does(tmp_path) -> None:
    """W3's floor is a timing of the same work: each member's last loss equals the sweep's to 1e-12."""
    args = ["--config", str(ROOT / "configs/lab04.yaml"), "--trainer.max_epochs=300", *QUIET]
    result = run_sweep(make_cli, args, str(ROOT / "configs/sweeps/lab04_grid.yaml"), save_dir=str(tmp_path))
    last = {row["member"]: row["train_loss"] for row in result.rows if row["epoch"] == 300}
    swept = [last[f"h{h}-lr{lr:g}"] for h in LAB4_HIDDEN for lr in LAB4_LRS]
    np.testing.assert_allclose(lab4_stacked_numpy_floor(LAB4_HIDDEN, LAB4_LRS, 300), swept, rtol=1e-12)


def test_the_install_sizes_add_up_and_find_torch() -> None:
    from benchmarks.first_minutes import installed_sizes

    sizes = installed_sizes()
    assert sizes["torch"] > 100  # MB: torch's own wheel, whatever build
    assert sizes["all"] == pytest.approx(sizes["torch"] + sizes["NVIDIA CUDA libraries"] + sizes["everything else"])


def test_w11_s_candidate_forms_make_the_same_updates() -> None:
    """Members first (stacked @), member-last (einsums) and torch tensors (one GEMM for the shared row): the same
    weights after the same updates, to rounding."""
    runs, weights = candidate_updates(members=70, updates=5)
    for run in runs.values():
        run()
    first, *others = weights.values()
    for other in others:
        for a, b in zip(first, other):
            np.testing.assert_allclose(np.asarray(b), a, rtol=0, atol=1e-14)
    assert not np.allclose(first[0], candidate_updates(members=70, updates=5)[1]["numpy, members first (stacked @)"][0])
