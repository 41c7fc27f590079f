"""Every time, size and ratio the README states is a measured one: it appears in docs/BENCHMARKS.md or
docs/RESULTS.md, which full runs of benchmarks/run.py and experiments.run_all write. Quoted error messages
(`` `error: ...` ``) are the program's words, not claims; settings and targets are not measurements either,
and each is listed here with why."""

from __future__ import annotations

import re

from tests.conftest import ROOT

FIGURE = re.compile(
    r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(ms|µs|us|s|min|minutes|seconds|hours|kB|MB|MiB|GB|GiB|x|×|%)(?!\w)"
)
NOT_MEASURED = {
    "2 s": "the logger's flush_secs, a setting",
    "10 s": "the bound the Ctrl-C test sets",
    "1.25x": "W6's target",
    "10%": "the MNIST family's validation share, a setting",
    "64 MB": "the sweep's block of rows, a setting",
    "24 MB": "the memory the README's example of a refused sweep pretends is available",
}


QUOTED_ERROR = re.compile(r"`error: [^`]*`")


def stated_figures(text: str) -> list[str]:
    return [m.group(0) for m in FIGURE.finditer(QUOTED_ERROR.sub("", text))]


def test_the_readme_states_only_measured_figures() -> None:
    readme = (ROOT / "README.md").read_text()
    measured = (ROOT / "docs/BENCHMARKS.md").read_text() + (ROOT / "docs/RESULTS.md").read_text()
    unmeasured = [
        f
        for f in stated_figures(readme)
        if f not in NOT_MEASURED and f.replace(" ", "") not in measured.replace(" ", "")
    ]
    assert not unmeasured, f"figures in README.md that docs/ does not hold: {unmeasured}"


def test_the_figure_finder_sees_times_sizes_and_ratios() -> None:
    assert stated_figures("took 1.5 s, 254 s and 3 min; 5.9 GB; 0.16x and 863× of it; 12%") == [
        "1.5 s",
        "254 s",
        "3 min",
        "5.9 GB",
        "0.16x",
        "863×",
        "12%",
    ]
    assert stated_figures("lr 0.1, 30 epochs, 2-3-3-2, --trainer.max_epochs 100, 1e-12") == []
    assert stated_figures("`error: it needs 13.1 kB; 12.3 kB are free` and 2.5x") == ["2.5x"]
