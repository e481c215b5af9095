"""The user's module and the default adapter around it (``PythonModel``).

The user writes ``fit`` and ``predict`` (and optionally ``save``/``load``, ``input_fn``/
``output_fn``, ``checkpoint``) in ``$ROSETTA_CODE_DIR/model.py``; this module finds them.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import pickle
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from rosetta_runtime.batching import is_rowwise
from rosetta_runtime.errors import ModelLoadError, UserCodeError
from rosetta_runtime.paths import Paths

MODEL_FILE = "model.pkl"
METADATA_FILE = "rosetta.json"


def load_user_module(paths: Paths | None = None) -> ModuleType:
    """Import the user's file as module ``rosetta_user_model``; its folder joins ``sys.path``."""
    paths = paths or Paths.from_env()
    file = paths.user_file
    if not file.is_file():
        raise UserCodeError(f"no user code at {file} (set ROSETTA_CODE_DIR / ROSETTA_PROGRAM)")
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    spec = importlib.util.spec_from_file_location("rosetta_user_model", file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserCodeError(f"{file.name} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def declared_hyperparameters(fit: Any) -> type | None:
    """The type annotating ``fit``'s second parameter (a dataclass), if any."""
    params = list(inspect.signature(fit).parameters.values())
    if len(params) < 2:
        return None
    try:
        hints = typing.get_type_hints(fit)
    except Exception:
        return None
    tp = hints.get(params[1].name)
    return tp if isinstance(tp, type) else None


def save_model(module: ModuleType, model: Any, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(module, "save"):
        module.save(model, model_dir)
    else:
        with (model_dir / MODEL_FILE).open("wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)


def n_features_of(module: ModuleType, model: Any) -> int | None:
    """The model's own feature count: the user's ``n_features(model)``, else scikit-learn's ``n_features_in_``."""
    fn = getattr(module, "n_features", None)
    n = fn(model) if callable(fn) else getattr(model, "n_features_in_", None)
    return int(n) if isinstance(n, int | np.integer) and not isinstance(n, bool) else None


def feature_names_of(module: ModuleType, model: Any) -> list[str] | None:
    """The user's ``feature_names(model)``, if ``model.py`` defines it (D2, rule 1)."""
    fn = getattr(module, "feature_names", None)
    if not callable(fn):
        return None
    names = fn(model)
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise UserCodeError(f"feature_names(model) must return a list of strings, got {names!r:.80}")
    return list(names)


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """``rosetta.json`` as training wrote it (D2); empty for a model trained elsewhere."""
    file = model_dir / METADATA_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


class PythonModel:
    """Adapter: the user's ``model.py`` behind :class:`rosetta_runtime.adapter.ModelAdapter`."""

    inline = False

    def __init__(self) -> None:
        self.module: ModuleType | None = None
        self.model: Any = None
        self.n_features: int | None = None
        #: the request columns, from rosetta.json (D2); a first CSV line equal to them is a header (D1)
        self.features: list[str] | None = None
        self.has_input_fn = False
        self.has_output_fn = False
        #: predict is declared ``@rosetta_runtime.rowwise``: concurrent requests may share a call (D9)
        self.rowwise = False

    def prepare(self) -> None:
        """Import the user's code once; multi-model mode then copies this adapter per model (D6)."""
        self.module = load_user_module()
        self.has_input_fn = callable(getattr(self.module, "input_fn", None))
        self.has_output_fn = callable(getattr(self.module, "output_fn", None))
        self.rowwise = is_rowwise(getattr(self.module, "predict", None))

    def load(self, model_dir: Path) -> None:
        if self.module is None:
            self.prepare()
        assert self.module is not None
        meta = read_metadata(model_dir)
        self.features = meta.get("features")
        self.n_features = meta.get("n_features")
        if hasattr(self.module, "load"):
            self.model = self.module.load(model_dir)
        else:
            file = model_dir / MODEL_FILE
            if not file.is_file():
                found = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
                raise ModelLoadError(f"no {MODEL_FILE} in {model_dir} (found: {found or 'nothing'})")
            try:
                with file.open("rb") as fh:
                    self.model = pickle.load(fh)  # the model artifact is trusted; requests never are
            except Exception as exc:
                raise ModelLoadError(f"{file} is corrupt: {type(exc).__name__}: {exc}") from exc
        if self.n_features is None:
            self.n_features = n_features_of(self.module, self.model)

    def predict(self, X: np.ndarray) -> Any:
        assert self.module is not None
        return self.module.predict(self.model, X)

    def decode(self, body: bytes, content_type: str) -> Any | None:
        fn = getattr(self.module, "input_fn", None)
        return fn(body, content_type) if fn else None

    def encode(self, predictions: Any, accept: str) -> tuple[bytes, str] | None:
        fn = getattr(self.module, "output_fn", None)
        return fn(predictions, accept) if fn else None

    def sample(self) -> np.ndarray | None:
        fn = getattr(self.module, "sample_input", None)
        if fn is not None:
            return np.asarray(fn(), dtype=np.float64)
        return np.zeros((1, self.n_features)) if self.n_features else None
