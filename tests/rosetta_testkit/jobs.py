"""Small helpers of the image tests: training jobs on a fake /opt/ml, their failure files, requests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from rosetta_testkit.runtimes import DATA
from sagemaker_rosetta.containers import ml_root

ROW = b"5.1,3.5,1.4,0.2"


def iris_job(base: Path, hyperparameters: dict[str, str] | None = None) -> Path:
    """A fake /opt/ml with the iris training set in channel ``train``."""
    return ml_root(base, hyperparameters=hyperparameters or {},
                   channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})


def toy_job(base: Path, hyperparameters: dict[str, str] | None = None) -> Path:
    """A fake /opt/ml for the toy program (its data is never read)."""
    return ml_root(base, hyperparameters=hyperparameters or {}, channels={"train": {"x.csv": "a\n1\n"}})


def failure_lines(ml: Path) -> list[str]:
    """``/opt/ml/output/failure`` of a job, line by line."""
    return (ml / "output" / "failure").read_text().splitlines()


def metric(stdout: str, name: str) -> float | None:
    """The value of a ``#metric name=value`` line (T-20)."""
    m = re.search(rf"#metric {re.escape(name)}=([0-9.eE+-]+)", stdout)
    return float(m.group(1)) if m else None


def rows(n: int, final_newline: bool = True, row: bytes = ROW) -> bytes:
    return b"\n".join([row] * n) + (b"\n" if final_newline else b"")


def eventually(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``check`` until it holds or ``timeout`` s pass (for states a container reaches on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
