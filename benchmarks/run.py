"""Run every benchmark in one process, print the ratios and write docs/BENCHMARKS.md.

    python benchmarks/run.py                # all workloads
    python benchmarks/run.py --only w1 w3   # a subset, written to runs/benchmarks/ (docs/ holds full runs only)

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
    array_api_cost,
    first_minutes,
    sweeps,
    w1_week04_sgd,
    w2_mnist_epoch,
    w4_lenet_update,
    w6_dashboard_cost,
    w7_long_runs,
    w10_fashion_load,
    w11_sweep_command,
    w12_fashion_sweep,
    w13_csv_memory,
)
from benchmarks.timing import Timing  # noqa: E402
from callbacks.figures import new_figure  # noqa: E402
from commands.machine import machine_summary  # noqa: E402
from models.tables import markdown_table  # noqa: E402


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
        {
            "ours_manual / numpy_loop": 1.0,
            "ours_native / torch_loop": 1.0,
            "ours_manual_callbacks_off / numpy_loop": 1.0,
        },
        f"Largest |w_ours_manual - w_numpy_loop| after training: {result['max_weight_diff_vs_numpy_loop']:.2e}.",
    )


def w2_section(result: dict) -> list[str]:
    return timed_section(
        "## W2: Fashion-MNIST epoch",
        "54,000 training rows, 784-256-256-10 ReLU, batch 128, SGD lr 0.1, float32, one training epoch "
        "(validation off on every path).",
        result,
        {"ours_native / preloaded_loop": 1.1, "ours_manual / preloaded_loop": 1.0},
        f"Measured sgemm rate: {result['sgemm_gflops']:.1f} GFLOP/s. One epoch is {result['epoch_gflop']:.1f} GFLOP; "
        + ", ".join(f"{k}: {v:.1f} GFLOP/s" for k, v in result["achieved_gflops"].items())
        + ".",
        "Peak RSS of `python train.py fit --config configs/fashion_mnist.yaml` for one epoch (manual module): "
        f"{result['peak_rss_mb']:.0f} MB (target <= 1500 MB).",
    )


def w3_section(result: dict) -> list[str]:
    return timed_section(
        "## W3: Lab-4 grid through the sweep",
        "Hidden {4, 8, 16} x lr {0.1, 0.5, 1.0}, 10,000 full-batch epochs of the delta rule on Lab 4's three rows: "
        "`train.py sweep --config configs/lab04.yaml --sweep configs/sweeps/lab04_grid.yaml` in-process (data, "
        "stack, training, evaluation, results) against the plain torch loop over the 9 configs, one after another.",
        result,
        {"sweep / plain_loop": 0.1},
        "`sweep_one_epoch` is the same sweep for one epoch: what it costs besides the updates (parsing and "
        "checking the config and grid, building the stack and its Trainer, evaluating, the results). The second "
        "ratio leaves that out: the 90,000 updates stacked against the same updates one config at a time. "
        "`stacked_numpy_floor` is the same grid stacked by hand, the update written as the fewest NumPy calls "
        "(no layers, no Lightning, nothing logged; `benchmarks/baselines.py`): the most that stacking in NumPy "
        "can give, without the sweep's fixed cost. With that cost added it is the floor of any sweep that runs "
        "its updates as NumPy calls: where the floor exceeds 0.1x, so must the sweep.",
    )


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
        "## W5: week-4 grid through the sweep",
        "lr {0.01, 0.05, 0.1, 0.2} x hidden {3,3 / 5,5 / 10,10} x seed {0, 1, 2}: 36 trajectories x 100 epochs of "
        "single-example SGD (1.44 million updates), read after 30, 60 and 100 epochs: one in-process `train.py sweep` "
        "against the notebook-style NumPy loop over the same 36 configs one after another. The sequential "
        "`train.py fit` grid is one measured 100-epoch fit times 36.",
        result,
        {"sweep / notebook_loop": 0.05},
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


def w7_section(result: dict) -> list[str]:
    return timed_section(
        "## W7-W9: long runs of tiny nets",
        "The whole `train.py fit` as shipped (in-process, epoch blocks as configured, no test, no progress bar) "
        "against the notebook's own loop over the same rows: W7 `configs/moons.yaml` (1,000 full-batch epochs, "
        "2-10-2 ReLU) against a NumPy loop; W8 `configs/flower.yaml` (1,000 epochs x "
        f"{result['flower_rows']} per-example updates) against the notebook's scalar loop; W9 `configs/lab04.yaml` "
        "(1,000 full-batch epochs) against the plain torch loop.",
        result,
        {"W7 moons_fit / moons_numpy_loop": 10.0, "W8 flower_fit / flower_scalar_loop": 1.5},
        f"Fixed cost of one fit (`configs/moons.yaml` for one epoch): {result['fixed_cost_s']:.2f} s.",
    )


def w10_section(result: dict) -> list[str]:
    return timed_section(
        "## W10: Fashion-MNIST load (recorded only)",
        "Debian's `/usr/share/datasets/fashion-mnist` into normalised whole-split tensors (54,000 / 6,000 / 10,000 "
        "rows) and the first batch, as `MNISTDataModule` does before a run's first step, against gunzip + "
        "`numpy.frombuffer` + one scaling of the same files.",
        result,
        {},
        f"Ours: {result['timings']['ours'].median:.2f} s (the test of the real data once asserted < 20 s).",
    )


def w13_section(result: dict) -> list[str]:
    rows = [
        ["file", f"{result['file_mb']:.0f} MiB ({result['rows']:,} rows x {result['columns']} columns)"],
        ["read, standardised, into tensors", f"{result['seconds']:.1f} s"],
        ["process before reading (Python, torch, Lightning)", f"{result['before_mb']:.0f} MiB"],
        ["peak RSS of the process", f"{result['peak_mb']:.0f} MiB = {result['peak_per_file']:.2f}x the file"],
        ["what reading added at its peak", f"{result['own_mb']:.0f} MiB = {result['own_per_file']:.2f}x the file"],
    ]
    return [
        "## W13: memory of reading a large numeric CSV",
        "",
        "A numeric CSV (10 standard-normal features with 9 significant digits and a 0/1 label) read by "
        "`CSVDataModule` as `fit` reads it (fitted state, `normalize: standardize`, training tensors) in a fresh "
        "process; peak RSS is that process's VmHWM. Target: reading adds at most 3x the file's size.",
        "",
        markdown_table(["measure", "value"], rows),
        "",
    ]


def w11_section(result: dict, figure_dir: Path) -> list[str]:
    """10,000 tiny members: the whole command against the notebook, its floors, the training's share of the sgemm
    rate, the candidate forms of one update, and the scaling from 1 to 10,000 members (a table and a figure)."""
    rows = result["scaling"]
    figure = new_figure(5.5, 3.8)
    ax = figure.add_subplot(1, 1, 1)
    members = [r["members"] for r in rows]
    ax.loglog(members, [r["seconds"] for r in rows], marker="o", label="in-process sweep, s")
    ax.loglog(members, [r["training_s"] for r in rows], marker="^", label="its training, s")
    ax.loglog(members, [r["per_member_ms"] / 1e3 for r in rows], marker="s", label="per member, s")
    ax.set_xlabel("members in the stack")
    ax.legend()
    figure_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(figure_dir / "sweep_scaling.png", dpi=100)
    formats = {
        "members": "d",
        "seconds": ".2f",
        "training_s": ".2f",
        "per_member_ms": ".2f",
        "peak_rss_mb": ".0f",
        "sweep_mb": ".0f",
    }
    table = [[format(r[key], spec) for key, spec in formats.items()] for r in rows]
    candidates = [[name, f"{us:.0f}"] for name, us in result["candidates_us"].items()]
    return [
        *timed_section(
            "## W11: 10,000 week-4 members through the whole sweep command",
            f"The week-4 net (2-3-3-2 sigmoid, no bias, float64) with {w11_sweep_command.MEMBERS:,} learning rates, "
            f"{w11_sweep_command.EPOCHS} epochs of single-example SGD on 400 rows: `python train.py sweep` in a fresh "
            "process as a user runs it (start-up, parsing, data, training, evaluation, results, figures, TensorBoard "
            "runs) against one notebook NumPy run of the same net (`benchmarks/baselines.py`, 30 epochs). The floors: "
            "a fresh interpreter importing Lightning, and the whole command for one member and one epoch.",
            result,
            {"whole command / notebook_numpy_run": 8.0},
            f"Training alone (inside the stack's fit, {w11_sweep_command.MEMBERS:,} members): "
            f"{result['training_s']:.2f} s for {result['training_gflop']:.1f} GFLOP of matrix products "
            f"({w11_sweep_command.FLOP_PER_MEMBER_UPDATE} per member and update, counted as W2 counts them) = "
            f"{result['training_gflops']:.2f} GFLOP/s, {100 * result['training_gflops'] / result['sgemm_gflops']:.1f}% "
            f"of the sgemm rate measured in this run ({result['sgemm_gflops']:.0f} GFLOP/s).",
        ),
        f"One stacked update of {w11_sweep_command.MEMBERS:,} members reading one shared row, through the layers and "
        "SGD, per candidate form (the sweep lays out NumPy stacks of 64 members or more member-last):",
        "",
        markdown_table(["form", "us per update"], candidates),
        "",
        "Scaling: 1 to 10,000 learning rates in one stack, each count in-process in a fresh process (after a "
        "one-member sweep, so that first-use costs stay outside the seconds); peak RSS is that process's high-water "
        "mark (imports included), the last column what the sweep added to it.",
        "",
        markdown_table(["members", "seconds", "training s", "ms per member", "peak RSS MB", "sweep's own MB"], table),
        "",
        f"![sweep scaling]({figure_dir.name}/sweep_scaling.png)",
        "",
    ]


def first_minutes_section(repeats: int) -> list[str]:
    quick = first_minutes.quick_start(repeats)
    sizes = first_minutes.installed_sizes()
    return [
        "## Quick start and install",
        "",
        "The README's quick start as a user runs it: the whole `python train.py compare --config configs/week04.yaml` "
        "process, imports included, output to a file.",
        "",
        timing_table({"quick": quick}),
        "",
        "What this Python environment has installed (every distribution's recorded files): the project's own "
        "dependencies and the tools the tests use, with PyTorch's default Linux build and the CUDA libraries it "
        "pulls in.",
        "",
        markdown_table(["installed", "MB"], [[name, f"{mb:.0f}"] for name, mb in sizes.items()]),
        "",
    ]


def w12_section(result: dict) -> list[str]:
    achieved = ", ".join(f"{name}: {rate:.1f} GFLOP/s" for name, rate in result["achieved_gflops"].items())
    return timed_section(
        "## W12: 4 Fashion-MNIST members on shared batches",
        "784-256-256-10 ReLU, batch 128, learning rates {0.05, 0.1, 0.2, 0.3}, float32, one epoch of 54,000 rows: "
        "`train.py sweep --config configs/fashion_mnist.yaml` in-process (the epoch timed inside its fit; the members "
        "share every batch, and the first layer is one GEMM for all four) against one epoch of W2's plain "
        "preloaded-tensor loop for one net, interleaved; the command in a fresh process once.",
        result,
        {"sweep_epoch / preloaded_loop": 2.0},
        f"Measured sgemm rate: {result['sgemm_gflops']:.1f} GFLOP/s ({result['threads']} threads); {achieved}. "
        "The floor is the four members' matrix products at that rate.",
        "Largest |parameter difference| between the lr-0.1 member and its own one-epoch `train.py fit` in float32: "
        f"{result['float32_member_difference']:.1e}; between that fit and the same fit by autograd "
        f"(`models.NativeModule`), for scale: {result['float32_manual_native_difference']:.1e} (largest "
        f"|parameter| {result['largest_weight']:.2f}).",
    )


def array_api_section(result: dict) -> list[str]:
    return [
        "## Array API dispatch (recorded only)",
        "",
        "The layers pick torch or NumPy with one `isinstance` (`models/layers/xp.py`); array-api-compat's "
        "`array_namespace` (scikit-learn ships a copy) could replace it. Per call and per W1 update:",
        "",
        markdown_table(["measure", "value"], [[k, v] for k, v in result.items()]),
        "",
    ]


WORKLOADS = {  # name: (run it with the number of interleaved rounds and the report's folder, its section)
    "w1": (lambda repeats, out: w1_section(w1_week04_sgd.run(repeats))),
    "w2": (lambda repeats, out: w2_section(w2_mnist_epoch.run(repeats))),
    "w3": (lambda repeats, out: w3_section(sweeps.lab4_grid())),
    "w4": (lambda repeats, out: w4_section(w4_lenet_update.run(repeats))),
    "w5": (lambda repeats, out: w5_section(sweeps.week04_grid())),
    "w6": (lambda repeats, out: w6_section(w6_dashboard_cost.run(repeats))),
    "w7": (lambda repeats, out: w7_section(w7_long_runs.run(repeats))),
    "w10": (lambda repeats, out: w10_section(w10_fashion_load.run(repeats))),
    "w11": (lambda repeats, out: w11_section(w11_sweep_command.run(repeats), out.parent / "benchmarks")),
    "w12": (lambda repeats, out: w12_section(w12_fashion_sweep.run(min(repeats, 3)))),
    "w13": (lambda repeats, out: w13_section(w13_csv_memory.run())),
    "array_api": (lambda repeats, out: array_api_section(array_api_cost.measure())),
    "first": (lambda repeats, out: first_minutes_section(min(repeats, 3))),
}
SCRATCH = ROOT / "runs" / "benchmarks" / "BENCHMARKS.md"  # where partial runs write: docs/ holds full runs only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds for the fast paths")
    parser.add_argument("--out", help="default: docs/BENCHMARKS.md for a full run, else " + str(SCRATCH))
    args = parser.parse_args()
    full = set(args.only) == set(WORKLOADS)
    out = Path(args.out) if args.out else ROOT / "docs" / "BENCHMARKS.md" if full else SCRATCH
    started = time.perf_counter()
    sections: list[str] = []
    for name in args.only:
        lines = WORKLOADS[name](args.repeats, out)
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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + sections))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
