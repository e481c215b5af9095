"""In-process fixtures: a temporary /opt/ml and user code, run through the real runtime."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

IRIS = Path(__file__).resolve().parents[3] / "examples" / "iris"

TOY_MODEL = '''
from dataclasses import dataclass
import numpy as np

@dataclass
class Hyperparameters:
    scale: float = 1.0
    label: str = "y"

class Toy:
    n_features_in_ = 3
    def __init__(self, scale):
        self.scale = scale

def fit(data, hp: Hyperparameters):
    frame = data["train"]
    return Toy(hp.scale * float(frame[hp.label].mean()))

def predict(model, X):
    return X.sum(axis=1) * model.scale
'''


@pytest.fixture
def ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ml"
    for sub in ("input/config", "input/data", "model", "output", "checkpoints"):
        (root / sub).mkdir(parents=True)
    monkeypatch.setenv("ROSETTA_ML_ROOT", str(root))
    monkeypatch.delenv("ROSETTA_MODEL_DIR", raising=False)
    return root


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Path]]:
    code = tmp_path / "code"
    code.mkdir()
    monkeypatch.setenv("ROSETTA_CODE_DIR", str(code))

    def write(source: str) -> Path:
        (code / "model.py").write_text(textwrap.dedent(source))
        return code

    yield write
    sys.modules.pop("rosetta_user_model", None)
    if str(code) in sys.path:
        sys.path.remove(str(code))
