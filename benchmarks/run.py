"""Run every benchmark in one process, print the ratios and write docs/BENCHMARKS.md.

    python benchmarks/run.py                # all workloads
    python benchmarks/run.py --only w1 w3   # a subset (w1..w6)

Every ratio divides two medians measured in this run, so a slow or busy machine slows both sides.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    w1_week04_sgd,
    w2_mnist_epoch,
    w3_lab4_grid,
    w4_lenet_update,
    w5_fashion_load,
    w6_dashboard_cost,
)
from benchmarks.timing import Timing  # noqa: E402
from reporting.machine import machine_summary  # noqa: E402
from reporting.tables import markdown_table  # noqa: E402


def timing_table(timings: dict[str, Timing]) -> str:
    rows = [[t.name, f"{t.median:.3f}", t.spread, len(t.seconds)] for t in timings.values()]
    return markdown_table(["path", "median s", "min-max s", "runs"], rows)


def ratio_table(ratios: dict[str, float], targets: dict[str, float]) -> str:
    rows = []
    for name, value in ratios.items():
        target = targets.get(name)
        met = "" if target is None else ("yes" if value <= target else "no")
        rows.append([name, f"{value:.2f}x", "" if target is None else f"<= {target:g}x", met])
    return markdown_table(["ratio", "measured", "target", "met"], rows)


def timed_section(title: str, description: str, result: dict, targets: dict[str, float], *notes: str) -> list[str]:
    """A workload timed path by path: its timings, its ratios against their targets, then notes."""
    lines = [title, "", description, "", timing_table(result["timings"]), ""]
    lines += [ratio_table(result["ratios"], targets), ""]
    for note in notes:
        lines += [note, ""]
    return lines


def w1_section(result: dict) -> list[str]:
    return timed_section(
        "## W1: week-4 single-example SGD",
        "2-3-3-2 sigmoid, no bias, float64, 400 rows x 30 epochs = 12,000 updates, every step's loss kept. "
        "`ours_*` is `python train.py fit --config configs/week04.yaml` in-process as shipped "
        "(no test, no progress bar).",
        result,
        {"ours_manual / numpy_loop": 1.0, "ours_native / torch_loop": 1.0},
        f"Largest |w_ours_manual - w_numpy_loop| after training: {result['max_weight_diff_vs_numpy_loop']:.2e}.",
    )


def w2_section(result: dict) -> list[str]:
    return timed_section(
        "## W2: Fashion-MNIST epoch",
        "54,000 training rows, 784-256-256-10 ReLU, batch 128, SGD lr 0.1, float32, one training epoch "
        "(validation off on every path).",
        result,
        {"ours_native / preloaded_loop": 1.1, "ours_manual / preloaded_loop": 1.1},
        f"Measured sgemm rate: {result['sgemm_gflops']:.1f} GFLOP/s. One epoch is {result['epoch_gflop']:.1f} GFLOP; "
        + ", ".join(f"{k}: {v:.1f} GFLOP/s" for k, v in result["achieved_gflops"].items())
        + ".",
        "Peak RSS of `python train.py fit --config configs/fashion_mnist.yaml` for one epoch (manual module): "
        f"{result['peak_rss_mb']:.0f} MB (target <= 1500 MB).",
    )


def w3_row(r: dict) -> list[str]:
    plain = [f"{r['plain_seconds']:.2f}", f"{r['plain_mse']:.6f}", f"{r['plain_prediction']:.2f}"]
    ours = [f"{r['ours_seconds']:.2f}", f"{r['ours_mse']:.6f}"] if "ours_seconds" in r else ["-", "-"]
    return [str(r["hidden"]), str(r["lr"]), *plain, *ours]


def w3_section(result: dict) -> list[str]:
    rows = [w3_row(r) for r in result["rows"]]
    return [
        "## W3: Lab-4 grid (recorded only)",
        "",
        "Hidden {4, 8, 16} x lr {0.1, 0.5, 1.0}, 10,000 full-batch epochs on Lab 4's three rows, delta rule.",
        "",
        markdown_table(["hidden", "lr", "plain s", "plain MSE", "plain prediction", "ours s", "ours MSE"], rows),
        "",
        f"Plain loop, whole grid: {result['plain_total']:.2f} s. Ours (one Lightning epoch per notebook epoch): "
        f"{result['ours_total_estimate']:.0f} s for the grid, extrapolated from "
        f"{result['ours_measured']} measured config(s).",
        "",
    ]


def w4_section(result: dict) -> list[str]:
    return timed_section(
        "## W4: LeNet-style update (recorded only)",
        f"conv 6,16 (5x5, padding 2) + 784-120-84-10 ReLU, {w4_lenet_update.ROWS} rows of 28x28, float32: forward, "
        f"loss and every gradient; each timing is {w4_lenet_update.UPDATES_PER_TIMING} updates.",
        result,
        {},
        "Per update: " + ", ".join(f"{k} {v:.1f} ms" for k, v in result["per_update_ms"].items()) + ". "
        f"Largest hand-derived vs autograd gradient difference, relative to each parameter's largest entry, "
        f"in float32: {result['max_rel_grad_diff_float32']:.1e}.",
    )


def w5_section(result: dict) -> list[str]:
    return timed_section(
        "## W5: Fashion-MNIST load (recorded only)",
        "Debian's `/usr/share/datasets/fashion-mnist` into normalised whole-split tensors (54,000 / 6,000 / 10,000 "
        "rows) and the first batch, as `MNISTDataModule` does before a run's first step, against gunzip + "
        "`numpy.frombuffer` + one scaling of the same files.",
        result,
        {},
        f"Ours: {result['timings']['ours'].median:.2f} s (the test of the real data once asserted < 20 s).",
    )


def w6_section(result: dict) -> list[str]:
    return timed_section(
        "## W6: TensorBoard dashboard cost",
        "The week-4 fit as shipped (`configs/week04.yaml`: dashboard with 12,000 per-update scalars, histograms every "
        "3 epochs, graph, HParams, three figures at fit end; gradient check at fit start) against the same fit "
        "with those callbacks removed.",
        result,
        {"dashboard / callbacks_off": 1.25},
    )


WORKLOADS = {  # name: (run it with the number of interleaved rounds, its markdown section)
    "w1": (w1_week04_sgd.run, w1_section),
    "w2": (w2_mnist_epoch.run, w2_section),
    "w3": (lambda repeats: w3_lab4_grid.run(), w3_section),
    "w4": (w4_lenet_update.run, w4_section),
    "w5": (w5_fashion_load.run, w5_section),
    "w6": (w6_dashboard_cost.run, w6_section),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds for the fast paths")
    parser.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    sections: list[str] = []
    for name in args.only:
        run, section = WORKLOADS[name]
        lines = section(run(args.repeats))
        sections += lines
        print("\n".join(lines), flush=True)
    header = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/run.py`; do not edit by hand. Medians and min-max spreads of "
        "interleaved runs in one process; ratios divide medians from the same run.",
        "",
        f"- Machine: {machine_summary()}",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; total time {time.perf_counter() - started:.0f} s",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + sections))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
