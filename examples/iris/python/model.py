"""Iris with a scikit-learn random forest: all the user writes for Rosetta's Python runtime."""

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from rosetta_runtime import log_metric, rowwise


@dataclass
class Hyperparameters:
    n_estimators: int = 100
    min_samples_leaf: int = 1
    target: str = "species"


def fit(data, hp: Hyperparameters) -> RandomForestClassifier:
    train = data["train"]
    X, y = train.drop(columns=[hp.target]).to_numpy(dtype=float), train[hp.target].to_numpy()
    model = RandomForestClassifier(hp.n_estimators, min_samples_leaf=hp.min_samples_leaf, random_state=0)
    model.fit(X, y)
    log_metric("train_accuracy", model.score(X, y))
    return model


@rowwise  # one prediction per row, from that row only: concurrent requests may share a call
def predict(model: RandomForestClassifier, X: np.ndarray) -> np.ndarray:
    return model.predict(X)
