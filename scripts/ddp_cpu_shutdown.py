"""Runs a short ``fit`` under ``configs/trainer/ddp_cpu.yaml`` many times and counts the runs that did not end
cleanly: a non-zero exit, or a C++ abort message such as "terminate called without an active exception" (a
gloo process group left to the interpreter's exit).

    python scripts/ddp_cpu_shutdown.py --runs 20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABORTS = ("terminate called", "Aborted", "core dumped")


def one_run(save_dir: str) -> tuple[int, bool]:
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "fit",
        "--config",
        str(ROOT / "configs/week04.yaml"),
        "--trainer",
        str(ROOT / "configs/trainer/ddp_cpu.yaml"),
        "--trainer.max_epochs=2",
        "--test_after_fit=false",
        f"--trainer.logger.init_args.save_dir={save_dir}",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return done.returncode, any(word in done.stdout + done.stderr for word in ABORTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    bad = 0
    with tempfile.TemporaryDirectory() as save_dir:
        for i in range(1, runs + 1):
            code, aborted = one_run(save_dir)
            bad += code != 0 or aborted
            print(f"run {i}: exit {code}{', abort message' if aborted else ''}", flush=True)
    print(f"{runs - bad} of {runs} runs ended cleanly")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
