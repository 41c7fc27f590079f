"""Generate the shipped flower CSV. The flower notebook's own file is not public, so this one is made up.

Rule: a flower thrives when ``sun + water`` lies between 1.0 and 1.6 (inclusive): enough light and
water together, but not too much. ``sun`` and ``water`` are drawn uniformly from [0, 1] with
``numpy.random.default_rng(seed)`` and rounded to 2 decimals. The first five rows are the five
rows the notebook shows (all five obey the rule). A band between two parallel lines is what a
2-2-1 sigmoid network can represent: one hidden unit per edge.

    python scripts/make_flower_csv.py                  # writes data/flower/flower_data_train.csv
    python scripts/make_flower_csv.py --out x.csv --rows 200 --seed 1
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

NOTEBOOK_ROWS = [(0.73, 0.15), (0.6, 0.5), (1.0, 1.0), (0.8, 0.55), (0.9, 0.6)]
LOW, HIGH = 1.0, 1.6


def outcome(sun: float, water: float) -> str:
    return "Thrived" if LOW <= round(sun + water, 2) <= HIGH else "Did not thrive"


def flower_rows(n_rows: int, seed: int) -> list[tuple[int, float, float, str]]:
    rng = np.random.default_rng(seed)
    drawn = np.round(rng.uniform(0.0, 1.0, size=(n_rows - len(NOTEBOOK_ROWS), 2)), 2)
    pairs = NOTEBOOK_ROWS + [(float(s), float(w)) for s, w in drawn]
    return [(i, s, w, outcome(s, w)) for i, (s, w) in enumerate(pairs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/flower/flower_data_train.csv"))
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force to replace it, or choose --out.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["flower_id", "sun", "water", "outcome"])
        writer.writerows(flower_rows(args.rows, args.seed))
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
