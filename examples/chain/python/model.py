"""Chain step 2 (Python): a logistic regression on standardised iris features; answers the class
probabilities (one row of three per request row, classes in sorted order).

The training split is standardised here by the rule the R step applies at serving time (column
mean, standard deviation with n - 1), so the model sees the same inputs in training and behind
the R container.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from rosetta_runtime import log_metric, rowwise


@dataclass
class Hyperparameters:
    target: str = "species"
    C: float = 1.0


def fit(data, hp: Hyperparameters) -> LogisticRegression:
    train = data["train"]
    X, y = train.drop(columns=[hp.target]).to_numpy(dtype=float), train[hp.target].to_numpy()
    Z = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    model = LogisticRegression(C=hp.C, max_iter=1000)
    model.fit(Z, y)
    log_metric("train_accuracy", model.score(Z, y))
    return model


@rowwise
def predict(model: LogisticRegression, X: np.ndarray) -> np.ndarray:
    return model.predict_proba(X)
