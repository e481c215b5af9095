"""Split labelled iris rows into train / test (with labels) / test features (headerless).

A SageMaker Processing script (standard library only): reads every CSV (with header) in
/opt/ml/processing/input/data, holds out ``--test-fraction`` of each class (seeded), writes
output/train/train.csv, output/test/test.csv and output/features/test_features.csv — the last
without header or target column, because batch transform sends CSV rows as they are (B-09).
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

ROOT = Path("/opt/ml/processing")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--target", default="species")
    args = ap.parse_args()

    header: list[str] = []
    rows: list[list[str]] = []
    for path in sorted((ROOT / "input" / "data").glob("*.csv")):
        with path.open(newline="") as f:
            reader = csv.reader(f)
            file_header = next(reader)
            if header and file_header != header:
                raise SystemExit(f"{path.name}: header {file_header} differs from {header}")
            header = file_header
            rows.extend(r for r in reader if r)
    if args.target not in header:
        raise SystemExit(f"target column {args.target!r} not in {header}")
    t = header.index(args.target)

    rng = random.Random(args.seed)
    held_out: set[int] = set()
    for label in sorted({r[t] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r[t] == label]
        rng.shuffle(idx)
        held_out.update(idx[: round(len(idx) * args.test_fraction)])

    train = [r for i, r in enumerate(rows) if i not in held_out]
    test = [r for i, r in enumerate(rows) if i in held_out]
    write(ROOT / "output" / "train" / "train.csv", [header, *train])
    write(ROOT / "output" / "test" / "test.csv", [header, *test])
    write(ROOT / "output" / "features" / "test_features.csv", [r[:t] + r[t + 1:] for r in test])
    print(f"split {len(rows)} rows: {len(train)} train, {len(test)} test (seed {args.seed})")


def write(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


if __name__ == "__main__":
    main()
