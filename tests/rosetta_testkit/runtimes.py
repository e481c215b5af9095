"""The runtimes under test, in one table: the same suite runs against each of them.

Each entry names its runtime image and the iris example image built on it (from the image table
in :mod:`sagemaker_rosetta.images`), how to train the example, and the few things that differ by
design (the model file, whether workers are processes, how a worker looks in ``ps``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sagemaker_rosetta import images
from sagemaker_rosetta.containers import Process

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "iris" / "data"
TOYS = ROOT / "tests" / "toys"


@dataclass(frozen=True)
class Runtime:
    key: str
    #: the toy program's folder under tests/toys (python, r, julia)
    language: str
    #: names in sagemaker_rosetta.images: the runtime image and the iris example built on it
    runtime_image: str
    example_image: str
    #: the example's training hyperparameters (SageMaker's str encoding, target JSON-quoted)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    #: what ``rosetta.json`` says the runtime is (D2)
    runtime_json: str = "python"
    #: the metric line the example prints while training (T-20)
    metric: str = "train_accuracy"
    #: the model file the runtime saves and loads by default
    model_file: str = "model.pkl"
    #: what the log says when that file is garbage
    corrupt_model_reason: str = "/opt/ml/model/model.pkl is corrupt"
    #: an integer hyperparameter the example declares (to give it a bad value)
    int_hyperparameter: str = "n_estimators"
    #: workers are processes (one can be killed); Julia serves from threads of one process
    multiprocess: bool = True
    #: a serving worker's command line (children of PID 1)
    worker: str = ""
    #: seconds the first /ping 200 may take (Julia compiles)
    ready_timeout: float = 120
    #: `docker stop` of an idle server must return within this many seconds (S-13)
    stop_seconds: float = 5
    #: SIGTERM during training must end the job (exit 143) within this many seconds (T-21)
    train_stop_seconds: float = 10

    @property
    def image(self) -> str:
        """The runtime image (``rosetta/...``)."""
        return images.tag(self.runtime_image)

    @property
    def example(self) -> str:
        """The iris example image (``rosetta-example/...``)."""
        return images.tag(self.example_image)

    @property
    def toy(self) -> Path:
        """The toy program folder, mounted over /opt/program by the lifecycle tests."""
        return TOYS / self.language

    def workers(self, processes: list[Process], init: int | None) -> list[int]:
        """Host PIDs of the serving workers among a container's processes (PID 1 = ``init``)."""
        return sorted(p.pid for p in processes if p.ppid == init and re.search(self.worker, p.args))

    def __str__(self) -> str:
        return self.key


RUNTIMES: list[Runtime] = [
    Runtime("python", "python", "python", "iris-python", {"n_estimators": "30", "target": '"species"'},
            worker=r"rosetta-entrypoint serve"),
    Runtime("r-plumber", "r", "r", "iris-r", {"ntree": "50", "target": '"species"', "seed": "7"},
            runtime_json="r", metric="train:oob_error", model_file="model.rds", int_hyperparameter="ntree",
            worker=r"rosetta::serve_worker", corrupt_model_reason="cannot load the model: unknown input format"),
    Runtime("r-rpy2", "r", "r-rpy2", "iris-r-rpy2", {"ntree": "50", "target": '"species"', "seed": "7"},
            runtime_json="r", metric="train:oob_error", model_file="model.rds", int_hyperparameter="ntree",
            worker=r"rosetta_runtime\.entrypoint serve", corrupt_model_reason="readRDS(path) : unknown input format"),
    Runtime("julia", "julia", "julia", "iris-julia", {"epochs": "400", "target": '"species"'},
            runtime_json="julia", model_file="model.jls", int_hyperparameter="epochs", multiprocess=False,
            corrupt_model_reason="corrupt model file /opt/ml/model/model.jls: not a Julia Serialization stream",
            ready_timeout=180, stop_seconds=10, train_stop_seconds=30),
]
BY_KEY = {rt.key: rt for rt in RUNTIMES}
