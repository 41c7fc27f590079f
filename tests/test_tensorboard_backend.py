"""What a user sees in TensorBoard after ``compare``: TensorBoard's own backend, queried over HTTP.

A real (short) ``compare`` run on the week-4 config, then ``tensorboard`` as a subprocess on
127.0.0.1 over its directory with the command the run prints, and the same data API its web page
calls: runs, scalar tags and points, the custom-scalars layout, the HParams experiment and
sessions, images, histograms, text and the graph. Offline: nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from callbacks.tensorboard_hparams import TICKED
from commands.compare import compare_main
from tests.conftest import ROOT
from train import make_cli

pytestmark = pytest.mark.slow  # a real compare run and a TensorBoard server: about 10 s; in the full run and CI

EPOCHS = 3
UPDATES = EPOCHS * 400  # week 4: 400 single-example updates per epoch
SHOWN = 5  # TensorBoard's HParams table ticks the first five hyper-parameters and metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """JSON and bytes from a running TensorBoard's ``/data`` API."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/data"

    def raw(self, path: str, body: dict | None = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def get(self, path: str, **query: str) -> object:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return json.loads(self.raw(path + suffix))

    def post(self, path: str, body: dict) -> dict:
        return json.loads(self.raw(path, body))


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory) -> tuple[Path, str]:
    """The parent directory of a 3-epoch week-4 compare, and what the command printed."""
    root = tmp_path_factory.mktemp("compare")
    args = [
        "--config", str(ROOT / "configs/week04.yaml"),
        "--trainer.max_epochs", str(EPOCHS),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.logger.init_args.save_dir", str(root),
        "--weights_export.print_final", "false",
    ]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert compare_main(args, make_cli) == 0
    return root / "week04_compare" / "version_0", out.getvalue()


@pytest.fixture(scope="module")
def backend(compare_run) -> Iterator[Backend]:
    """``tensorboard`` started with the command ``compare`` prints, loaded once the last tag is in."""
    run_dir, printed = compare_run
    command = re.search(r"tensorboard --logdir (\S+) --samples_per_plugin (\S+)", printed)
    assert command is not None, printed
    assert Path(command.group(1)) == run_dir and command.group(2) == "scalars=1200"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(run_dir), "--samples_per_plugin", command.group(2),
         "--host", "127.0.0.1", "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    client = Backend(port)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                tags = client.get("/plugin/scalars/tags")
                if all("test/f1_epoch" in tags.get(run, {}) for run in ("manual", "native")):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"TensorBoard did not load the run: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        yield client
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_two_runs_named_by_module_and_no_parent_run(backend) -> None:
    assert sorted(backend.get("/runs")) == ["manual", "native"]


def test_scalars_one_step_convention_full_resolution_no_clutter(backend) -> None:
    tags = backend.get("/plugin/scalars/tags")
    for run in ("manual", "native"):
        names = set(tags[run])
        assert {"train/loss_update", "train/loss_epoch", "val/loss_epoch", "val/f1_epoch", "test/f1_epoch"} <= names
        assert "grad_check/worst_relative_error" in names
        clutter = [
            t for t in names if t.endswith("_step") or t.startswith(("hp/", "grad_check/finite")) or t == "epoch"
        ]
        assert clutter == []
        updates = backend.get("/plugin/scalars/scalars", run=run, tag="train/loss_update")
        assert [step for _, step, _ in updates] == list(range(1, UPDATES + 1))  # every update, none sampled away
        epochs = backend.get("/plugin/scalars/scalars", run=run, tag="train/loss_epoch")
        assert [step for _, step, _ in epochs] == list(range(1, EPOCHS + 1))
        assert [step for _, step, _ in backend.get("/plugin/scalars/scalars", run=run, tag="test/f1_epoch")] == [EPOCHS]
    difference = backend.get("/plugin/scalars/scalars", run="manual", tag="compare/max_weight_difference")
    assert [step for _, step, _ in difference] == list(range(EPOCHS + 1))
    assert difference[0][2] == 0.0 and 0.0 < max(v for _, _, v in difference) < 1e-12
    assert "compare/max_weight_difference" not in tags["native"]


def test_custom_scalars_put_manual_and_native_in_one_chart_each(backend) -> None:
    layout = backend.get("/plugin/custom_scalars/layout")
    (category,) = layout["category"]
    assert category["title"] == "manual vs native"
    scalar_tags = backend.get("/plugin/scalars/tags")
    for chart in category["chart"]:
        patterns = chart["multiline"]["tag"]
        runs = {run for run, tags in scalar_tags.items() for tag in tags if any(re.search(p, tag) for p in patterns)}
        expected = {"manual"} if "w_manual - w_native" in chart["title"] else {"manual", "native"}
        assert runs == expected, chart["title"]
    titles = " ".join(chart["title"] for chart in category["chart"])
    assert "loss per optimiser update" in titles and "f1" in titles


def test_hparams_readable_columns_ticked_metrics_and_named_trials(backend) -> None:
    experiment = backend.post("/plugin/hparams/experiment", {"experimentName": ""})
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert not [n for n in names if n.startswith("_") or "conv" in n or "." in n]
    assert {"module", "optimizer", "lr", "hidden sizes", "activation", "init", "init std", "seed"} <= set(names)
    assert {"batch size", "rows per update", "epochs", "precision", "accelerator", "validation"} <= set(names)
    # The table ticks the first five after sorting those flagged `differs` first.
    ticked = sorted(experiment["hparamInfos"], key=lambda info: not info.get("differs", False))[:SHOWN]
    assert {info["name"] for info in ticked} == set(TICKED)
    metrics = [info["name"]["tag"] for info in experiment["metricInfos"]]
    assert len(metrics) <= SHOWN and "test/f1_epoch" in metrics and "train/loss_epoch" in metrics

    request = {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS"], "startIndex": 0, "sliceSize": 10}
    groups = backend.post("/plugin/hparams/session_groups", request)["sessionGroups"]
    by_run = {group["sessions"][0]["name"]: group for group in groups}
    assert sorted(by_run) == ["manual", "native"]
    for run, group in by_run.items():
        assert group["name"] == f"{run}-lr0.1-h3x3-seed0"
        assert group["hparams"]["module"] == run and group["hparams"]["validation"].startswith("test split")
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert set(values) == set(metrics)  # every declared metric has its run's value
        f1 = backend.get("/plugin/scalars/scalars", run=run, tag="test/f1_epoch")[-1][2]
        assert values["test/f1_epoch"] == pytest.approx(f1) and 0.5 < f1 <= 1.0


def test_images_histograms_text_and_graph(backend) -> None:
    images = backend.get("/plugin/images/tags")
    figures = {"figures/loss_curve", "figures/decision_boundary", "figures/confusion_matrix"}
    assert set(images["native"]) == figures and set(images["manual"]) == figures | {"compare/loss_curves"}
    (sample,) = backend.get("/plugin/images/images", run="manual", tag="compare/loss_curves")
    assert backend.raw(f"/plugin/images/individualImage?{sample['query']}")[:4] == b"\x89PNG"

    histograms = backend.get("/plugin/histograms/tags")["native"]
    assert {"weights/net.layers.0.weight", "gradients/net.layers.2.weight"} <= set(histograms)

    def text(run: str, tag: str) -> str:
        return backend.get("/plugin/text/text", run=run, tag=f"{tag}/text_summary")[-1]["text"]  # add_text's tag

    weights = text("manual", "weights/final")
    assert "W1 (2, 3)" in weights and "W3 (3, 2)" in weights and "conv" not in weights and "b{k}" not in weights
    grad_check = text("manual", "grad_check/report")
    # torch writes text as a one-row table; inside it, the check's own table: header + 3 weights x 2 references
    assert "<th>max rel err</th>" in grad_check and grad_check.count("<tr>") == 1 + 1 + 6
    f1_table = text("manual", "f1_comparison")  # what differs between rows; the rest once, above it
    assert "<th>f1</th>" in f1_table and "<th>run_dir</th>" not in f1_table and "<th>timestamp</th>" not in f1_table
    assert "PASS" in text("manual", "compare/summary")

    graphs = backend.get("/plugin/graphs/info")
    assert {run for run, info in graphs.items() if info["run_graph"]} == {"manual", "native"}
    graph = backend.raw("/plugin/graphs/graph?" + urllib.parse.urlencode({"run": "native"})).decode()
    assert graph.count("node {") >= 3 and "input" in graph
