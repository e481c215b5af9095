"""The constant model of the cross-language table: the same fixed vector for every row, in all three
languages (bench/models/constant/{python,r,julia}), so the table compares servers, not models."""

from typing import Any

import numpy as np

from rosetta_runtime import rowwise

CONSTANT = np.array([0.25, 0.25, 0.5])


def fit(data: Any, hp: Any) -> dict[str, list[float]]:
    return {"constant": CONSTANT.tolist()}


@rowwise  # one fixed row per input row: row-wise by construction (D9)
def predict(model: Any, X: np.ndarray) -> np.ndarray:
    return np.tile(CONSTANT, (X.shape[0], 1))
