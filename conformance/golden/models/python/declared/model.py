"""Golden-case fixture model plus feature_names (conformance/golden/README.md)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rosetta_runtime import checkpoint_dir, cluster, load_checkpoint, rowwise, save_checkpoint


@dataclass
class Hyperparameters:
    scale: float = 1.0
    offset: int = 0
    flag: bool = False
    label: str = "x"
    tags: list = field(default_factory=list)  # type: ignore[type-arg]  # items as given
    target: str = "y"
    fail: str = ""


def fit(data: Any, hp: Hyperparameters) -> dict[str, float]:
    if hp.fail == "fit":
        raise ValueError("fit failed on purpose")
    resumed = None
    if hp.fail == "after-checkpoint":  # a spot-style stop: the next run resumes (D8)
        state = load_checkpoint()
        if state is None:
            save_checkpoint({"step": 1})
            Path(checkpoint_dir(), "user-checkpoint.txt").write_text("1\n")
            raise ValueError("stopped after checkpoint")
        resumed = state["step"]
    train = data["train"]
    seen = {
        "hyperparameters": asdict(hp),
        "sm_hps": json.loads(os.environ["SM_HPS"]),
        "columns": [str(c) for c in train.columns],
        "rows": len(train),
        "first_column": train.iloc[:, 0].tolist(),
        "channels": sorted(data),
        "cluster": asdict(cluster()),
        "resumed": resumed,
    }
    out = os.environ["SM_OUTPUT_DATA_DIR"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "seen.json"), "w") as fh:
        json.dump(seen, fh)
    return {"scale": hp.scale, "offset": hp.offset}


@rowwise  # D9: requests may share one call (the -1 and -999 rows exercise the retry alone)
def predict(model: dict[str, float], X: np.ndarray) -> np.ndarray:
    if (X == -999).any():
        raise ValueError("boom")
    out = X.sum(axis=1) * model["scale"] + model["offset"]
    return out[:-1] if (X == -1).any() else out


def feature_names(model: dict[str, float]) -> list[str]:
    return ["x1", "x2"]
