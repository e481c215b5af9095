"""Make the example's data: a non-linear binary problem, train split into shards for ShardedByS3Key.

    python examples/xgboost/make_data.py     # writes data/ (deterministic; the files are committed)
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES = [f"x{i}" for i in range(8)]
SHARDS = 6


def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, len(FEATURES)))
    logit = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + X[:, 3] ** 2 - 1 + 0.5 * X[:, 4] + 0.3 * rng.normal(size=n)
    return X, (logit > 0).astype(int)


def write(path: Path, X: np.ndarray, y: np.ndarray | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join(FEATURES + (["label"] if y is not None else []))
    rows = X if y is None else np.column_stack([X, y])
    fmt = ["%.5f"] * len(FEATURES) + (["%d"] if y is not None else [])
    np.savetxt(path, rows, delimiter=",", fmt=fmt, header=header if y is not None else "", comments="")


def main() -> None:
    rng = np.random.default_rng(18)
    X, y = make(SHARDS * 1000, rng)
    for i, (xs, ys) in enumerate(zip(np.array_split(X, SHARDS), np.array_split(y, SHARDS), strict=True)):
        write(HERE / "data" / "train" / f"part-{i:02d}.csv", xs, ys)
    Xv, yv = make(2000, rng)
    write(HERE / "data" / "validation" / "validation.csv", Xv, yv)
    Xt, yt = make(1000, rng)
    for i, xs in enumerate(np.array_split(Xt, 2)):  # headerless feature rows for the batch transform
        write(HERE / "data" / "test" / f"test-{i}.csv", xs, None)
    (HERE / "data" / "test-labels.csv").write_text("".join(f"{v}\n" for v in yt))


if __name__ == "__main__":
    main()
