"""Training in every runtime image: the example trains; failures put the reason first; SIGTERM stops cleanly.

Exact failure texts for every hyperparameter and channel case are the golden cases'
(conformance/golden/training.json); here the image's side of it: exit codes, the failure file's
shape (reason, blank line, details), the reason on stderr, and the stop path (T-16, T-17, T-21).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from rosetta_testkit.jobs import eventually, failure_lines, iris_job, metric, toy_job
from rosetta_testkit.runtimes import Runtime
from rosetta_testkit.session import Trained
from sagemaker_rosetta.containers import Container, run

pytestmark = pytest.mark.docker


def test_example_trains_with_a_read_only_channel(rt: Runtime, trained: Trained) -> None:
    """T-01, T-04, T-05, T-07, T-08 (the channel mounted read-only), T-14 (the model dir packed), T-20."""
    value = metric(trained.stdout, rt.metric)
    assert value is not None and 0 <= value <= 1, trained.stdout[-2000:]
    assert not (trained.ml / "output" / "failure").exists()
    meta = json.loads((trained.model / "rosetta.json").read_text())
    assert meta["runtime"] == rt.runtime_json and meta["n_features"] == 4  # D2
    assert (trained.model / rt.model_file).is_file()


@pytest.mark.parametrize("case", ["bad-hyperparameter", "missing-channel", "user-error"])
def test_failure_reason_first(rt: Runtime, tmp_path: Path, case: str) -> None:
    if case == "bad-hyperparameter":
        ml = iris_job(tmp_path / "ml", {rt.int_hyperparameter: "abc"})
        res = run(rt.example, ["train"], volumes={ml: "/opt/ml"}, timeout=300)
        want = f"HyperparameterError: {rt.int_hyperparameter}: expected an integer, got 'abc'"
    elif case == "missing-channel":  # configured in inputdataconfig.json, absent on disk
        ml = iris_job(tmp_path / "ml", rt.hyperparameters)
        shutil.rmtree(ml / "input" / "data" / "train")
        res = run(rt.example, ["train"], volumes={ml: "/opt/ml"}, timeout=300)
        want = "DataError: channel 'train'"
    else:
        ml = toy_job(tmp_path / "ml", {"mode": "fail"})
        res = run(rt.image, ["train"], volumes={ml: "/opt/ml", rt.toy: "/opt/program:ro"}, timeout=300)
        want = "UserCodeError: "
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    lines = failure_lines(ml)
    assert lines[0].startswith(want) and lines[1:2] in ([], [""]), lines[:5]  # T-17: the reason, then details
    assert lines[0] in res.stderr  # and in the job's log
    if case == "user-error":  # the user's message first, then where it came from
        assert "toy exploded" in lines[0] and len(lines) > 3 and "fit" in "\n".join(lines[2:]), lines[:12]


def test_sigterm_during_training_checkpoints(rt: Runtime, tmp_path: Path) -> None:
    """T-21: SIGTERM reaches user code (checkpoint), the failure file says Stopped, exit 143 quickly."""
    ml = toy_job(tmp_path / "ml", {"mode": "slow"})
    job = Container(rt.image, ["train"], volumes={ml: "/opt/ml", rt.toy: "/opt/program:ro"}).start()
    try:
        assert eventually(lambda: "fitting" in job.logs(), 120), job.logs()[-2000:]
        t0 = time.monotonic()
        assert job.kill("TERM")
        code = job.wait_exit(60)
        took = time.monotonic() - t0
        assert code == 143 and took < rt.train_stop_seconds, (code, took, job.logs()[-2000:])
        assert (ml / "checkpoints" / "ckpt.txt").read_text().strip() == "saved"
        assert failure_lines(ml)[0].startswith("Stopped: received SIGTERM")
    finally:
        job.remove()
