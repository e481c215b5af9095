"""Toy model for the image tests (the same behaviour as ../r/model.R and ../julia/model.jl).

Training: hyperparameter ``mode`` = ``ok`` (a model), ``fail`` (raises "toy exploded"), ``slow``
(prints "fitting", then runs until SIGTERM; ``checkpoint`` writes ``ckpt.txt`` = "saved").
Serving: ``load`` waits ``TOY_LOAD_SECONDS``; ``predict`` sums each row of 2 features, after
sleeping ``-X[0, 0]`` seconds when that value is negative.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Hyperparameters:
    mode: str = "ok"


class Toy:
    n_features_in_ = 2


def fit(data: Any, hp: Hyperparameters) -> Toy:
    if hp.mode == "fail":
        raise RuntimeError("toy exploded")
    if hp.mode == "slow":
        print("fitting", flush=True)
        for _ in range(6000):
            time.sleep(0.1)
    return Toy()


def save(model: Toy, model_dir: Path) -> None:
    (model_dir / "toy.txt").write_text("toy")


def load(model_dir: Path) -> Toy:
    time.sleep(float(os.environ.get("TOY_LOAD_SECONDS", "0")))
    return Toy()


def predict(model: Toy, X: np.ndarray) -> np.ndarray:
    if X[0, 0] < 0:
        time.sleep(-X[0, 0])
    return np.asarray(X.sum(axis=1))


def checkpoint(checkpoint_dir: Path) -> None:
    (checkpoint_dir / "ckpt.txt").write_text("saved")
