"""What differs per language and per task in a new project: files, runtime image, manifest values.

The manifest's hyperparameters exercise every declared type in both SDK encodings (T-02); the
``[training.sigterm]`` values make training long enough to still run when SIGTERM comes (T-21).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sagemaker_rosetta.scaffold import sample_data

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Task:
    name: str
    target: str
    data: Callable[[], sample_data.SampleData]


TASK_SPECS: dict[str, Task] = {
    "classification": Task("classification", "label", lambda: sample_data.classification(target="label")),
    "regression": Task("regression", "y", lambda: sample_data.regression(target="y")),
}


@dataclass(frozen=True)
class Language:
    name: str
    title: str
    #: key of :data:`sagemaker_rosetta.images.IMAGES` (the ``FROM`` image)
    runtime: str
    model_file: str
    #: manifest ``[training] hyperparameters`` per task (the target is added)
    hyperparameters: Mapping[str, Mapping[str, Any]]
    bad_hyperparameters: Mapping[str, Any]
    sigterm_hyperparameters: Mapping[str, Any]
    #: one README paragraph: what the image offers and where the hooks are documented
    notes: str
    sigterm_timeout: float = 30.0
    sigterm_repeat: int = 1
    #: clause → reason, written to expected-failures.toml when not empty
    expected_failures: Mapping[str, str] = field(default_factory=dict)


LANGUAGES: dict[str, Language] = {
    "python": Language(
        "python", "Python", "python", "model.py",
        hyperparameters={
            "classification": {"n_estimators": 20, "max_features": 0.5, "bootstrap": True, "seed": 0},
            "regression": {"n_estimators": 50, "learning_rate": 0.1, "max_depth": 2, "seed": 0},
        },
        bad_hyperparameters={"n_estimators": "abc"},
        sigterm_hyperparameters={"n_estimators": 200000},
        notes="The image has numpy, pandas, scipy and scikit-learn. Optional hooks (`save`/`load`, "
              "`input_fn`/`output_fn`, `checkpoint`): the Python runtime's README (runtimes/python).",
    ),
    "r": Language(
        "r", "R", "r", "model.R",
        hyperparameters={
            "classification": {"ntree": 50, "nodesize": 1, "replace": True, "seed": 42},
            "regression": {"ntree": 50, "nodesize": 5, "seed": 42},
        },
        bad_hyperparameters={"ntree": "abc"},
        sigterm_hyperparameters={"ntree": 3000},
        sigterm_repeat=50,
        notes="The image has base R (stats: `lm`, `glm`), jsonlite and randomForest. Optional hooks "
              "(`save_model`/`load_model`, `input_fn`/`output_fn`, `checkpoint`): the R runtime's README "
              "(runtimes/r). `FROM rosetta/r:rpy2` serves the same model.R through the Python server.",
    ),
    "julia": Language(
        "julia", "Julia", "julia", "model.jl",
        hyperparameters={
            "classification": {"epochs": 300, "lr": 0.5, "l2": 0.001},
            "regression": {"epochs": 300, "lr": 0.1, "l2": 0.0},
        },
        bad_hyperparameters={"epochs": "abc"},
        sigterm_hyperparameters={"epochs": 1000000000},
        # julia starts slowly on a busy host; T-21 itself allows 120 s
        sigterm_timeout=90.0,
        notes="Standard library only (LinearAlgebra, Statistics, Random, …). Optional methods (`save`/`load`, "
              "`input_fn`/`output_fn`, `checkpoint`): the Julia runtime's README (runtimes/julia).",
        expected_failures={
            "S-09": "SHOULD: while the Julia server compiles on start, /ping can take just over 2 s on a busy "
                    "host (Julia 1.5 compiles under one global lock); passes on a quiet machine (XPASS)",
        },
    ),
}
