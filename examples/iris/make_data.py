"""Regenerate the iris split from scikit-learn's bundled copy (no downloads).

train.csv (header, 120 rows), test.csv (header, 30 rows, with labels) and
test_features.csv (30 headerless feature rows, the batch-transform input).
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

HERE = Path(__file__).parent / "data"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]


def main() -> None:
    iris = load_iris()
    rng = np.random.default_rng(7)
    test_idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(iris.target == k), 10, replace=False)
                                       for k in range(3)]))
    train_idx = np.setdiff1d(np.arange(len(iris.target)), test_idx)
    names = iris.target_names

    def rows(idx: np.ndarray, label: bool) -> list[str]:
        return [",".join([*(f"{v:g}" for v in iris.data[i]), *([names[iris.target[i]]] if label else [])])
                for i in idx]

    (HERE / "train.csv").write_text("\n".join([",".join(COLUMNS), *rows(train_idx, True)]) + "\n")
    (HERE / "test.csv").write_text("\n".join([",".join(COLUMNS), *rows(test_idx, True)]) + "\n")
    (HERE / "test_features.csv").write_text("\n".join(rows(test_idx, False)) + "\n")


if __name__ == "__main__":
    main()
