"""The benchmark model (serving-perf-anchors.md): iris random forest, 10 trees, predict_proba."""

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from rosetta_runtime import rowwise


@dataclass
class Hyperparameters:
    n_estimators: int = 10
    min_samples_leaf: int = 3
    target: str = "species"


def fit(data, hp: Hyperparameters) -> RandomForestClassifier:
    train = data["train"]
    X, y = train.drop(columns=[hp.target]).to_numpy(dtype=float), train[hp.target].to_numpy()
    return RandomForestClassifier(hp.n_estimators, min_samples_leaf=hp.min_samples_leaf, random_state=0).fit(X, y)


@rowwise  # D9: ROSETTA_BATCHING=off gives the unbatched contestant
def predict(model: RandomForestClassifier, X: np.ndarray) -> np.ndarray:
    return model.predict_proba(X)
