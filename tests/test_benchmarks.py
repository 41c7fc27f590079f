"""The W4 benchmark measures what it says: the hand-derived LeNet update computes autograd's gradients."""

from __future__ import annotations

import pytest

from benchmarks import w4_lenet_update


@pytest.mark.slow
def test_lenet_update_benchmark_runs_and_agrees_with_autograd() -> None:
    result = w4_lenet_update.run(repeats=1)
    assert set(result["per_update_ms"]) == {"hand_derived", "autograd_native", "autograd_plain"}
    assert all(ms > 0 for ms in result["per_update_ms"].values())
    assert result["max_rel_grad_diff_float32"] < 1e-4  # float32 rounding only
