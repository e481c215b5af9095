"""Write one iris training table per customer: ``data/customers/customer-NN.csv`` (24 customers).

Each customer has its own sample of the iris training rows (a bootstrap of 90 rows, seeded by the
customer number) measured with its own calibration (features scaled by ``1 + 0.02 * NN``), so
every customer's model is a different model. Deterministic: running it again writes the same files.

    python examples/mme/make_data.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "iris" / "data" / "train.csv"
CUSTOMERS = 24
ROWS = 90


def main() -> None:
    with SOURCE.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    out = HERE / "data" / "customers"
    out.mkdir(parents=True, exist_ok=True)
    for n in range(1, CUSTOMERS + 1):
        rng = random.Random(n)
        scale = 1 + 0.02 * n
        sample = [rng.choice(rows) for _ in range(ROWS)]
        with (out / f"customer-{n:02d}.csv").open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows([*(f"{float(v) * scale:.3f}" for v in row[:-1]), row[-1]] for row in sample)
    # a request a customer sends: three unlabelled flowers (setosa, versicolor, virginica) in cm
    (HERE / "data" / "request.csv").write_text("5.1,3.5,1.4,0.2\n6.0,2.9,4.5,1.5\n6.9,3.1,5.8,2.2\n")


if __name__ == "__main__":
    main()
