"""Small synthetic data sets for a new project: deterministic, numeric features, a named target.

Not iris: the scaffold must show that nothing depends on the example's columns. The same
seed gives the same bytes on every Python version (``random.Random`` is stable for a seed).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

FEATURES = ("x1", "x2", "x3", "x4")

#: three classes, each a cloud around its own centre (separable enough for any learner)
CENTRES = {"alpha": (0.0, 0.0, 1.0, 0.0), "beta": (3.0, 1.0, -1.0, 0.5), "gamma": (0.5, 3.5, 0.0, -1.0)}

#: y = 2.5 x1 - 1.5 x2 + 0.8 x3 + 4 + noise; x4 carries no signal
COEFFICIENTS = (2.5, -1.5, 0.8, 0.0)
INTERCEPT = 4.0


@dataclass(frozen=True)
class SampleData:
    """The training table (header, target last) and the headerless feature rows to score."""

    target: str
    train_rows: list[list[str]]
    test_rows: list[list[str]]

    @property
    def header(self) -> list[str]:
        return [*FEATURES, self.target]

    def train_csv(self) -> str:
        return "".join(",".join(r) + "\n" for r in [self.header, *self.train_rows])

    def test_features_csv(self) -> str:
        return "".join(",".join(r) + "\n" for r in self.test_rows)

    def json_body(self, n: int) -> str:
        """The first ``n`` test rows as one JSON array of arrays."""
        return json.dumps([[float(v) for v in r] for r in self.test_rows[:n]])

    def jsonlines_body(self, n: int) -> str:
        """The first ``n`` test rows, one JSON array per line."""
        return "".join(json.dumps([float(v) for v in r]) + "\n" for r in self.test_rows[:n])


def _num(v: float) -> str:
    return f"{v:.3f}"


def classification(n_train: int = 300, n_test: int = 40, seed: int = 7, target: str = "label") -> SampleData:
    """Three labelled clouds in four dimensions; balanced classes, rows shuffled."""
    rng = random.Random(seed)
    labels = sorted(CENTRES)

    def draw(n: int) -> list[tuple[list[str], str]]:
        rows = []
        for i in range(n):
            label = labels[i % len(labels)]
            rows.append(([_num(rng.gauss(c, 1.0)) for c in CENTRES[label]], label))
        rng.shuffle(rows)
        return rows

    train = [[*x, label] for x, label in draw(n_train)]
    test = [x for x, _ in draw(n_test)]
    return SampleData(target, train, test)


def regression(n_train: int = 300, n_test: int = 40, seed: int = 7, target: str = "y") -> SampleData:
    """A noisy linear response of four uniform features (one irrelevant)."""
    rng = random.Random(seed)

    def draw() -> tuple[list[str], float]:
        x = [round(rng.uniform(0.0, 10.0), 3) for _ in FEATURES]
        y = INTERCEPT + sum(c * v for c, v in zip(COEFFICIENTS, x, strict=True)) + rng.gauss(0.0, 1.0)
        return [_num(v) for v in x], y

    train = []
    for _ in range(n_train):
        x, y = draw()
        train.append([*x, _num(y)])
    test = [draw()[0] for _ in range(n_test)]
    return SampleData(target, train, test)
