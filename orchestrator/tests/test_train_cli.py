"""``rosetta train``: one local training job with the pipeline runner's semantics (real Docker: the echo
image and the iris-python example image)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from orch_helpers import ROOT

from rosetta_orchestrator.local import training
from rosetta_orchestrator.train_cli import (
    TrainUsageError,
    channels_of,
    encode_hyperparameters,
    job_name_for,
    metrics_of,
    multi_instance_support,
    pairs,
)
from sagemaker_rosetta.engine import docker

IRIS_PYTHON = "rosetta-example/iris-python:latest"
IRIS_TRAIN = ROOT / "examples" / "iris" / "data" / "train.csv"
SLEEPER = "rosetta-test/train-cli-sleeper:latest"


def train(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``rosetta train ARGS`` in this process (plain console: not a terminal)."""
    from rosetta_orchestrator.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    try:
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["train", *args])
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(["rosetta", "train", *args], code, out.getvalue(), err.getvalue())


def members(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar.getmembers() if m.isfile()}


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "part").mkdir(parents=True)
    (folder / "a.csv").write_text("1\n2\n")
    (folder / "part" / "b.csv").write_text("3\n")
    return folder


# -- the echo image ---------------------------------------------------------------------------------
@pytest.mark.docker
def test_echo_job_writes_model_metrics_and_the_next_command(echo_image: str, rows: Path, tmp_path: Path) -> None:
    out = tmp_path / "job"
    res = train(echo_image, "--channel", f"train={rows}", "--hp", "prefix=yo", "--hp", "repeat=2",
                "--metric", "rows", "--metric", r"counted=rows=(\d+)", "--output", str(out))
    assert res.returncode == 0, res.stderr
    model = out / "model.tar.gz"
    assert res.stdout.strip() == str(model)  # stdout: the artifact alone
    # T-14: the model folder's contents at the archive root, nested folders kept
    files = members(model)
    assert json.loads(files["model.json"]) == {"prefix": "yo", "repeat": 2, "rows": 3}
    assert files["sub/note.txt"] == b"nested file\n"
    # the runner's /opt/ml: hyperparameters as strings, one inputdataconfig entry per channel
    config = out / "ml" / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"prefix": "yo", "repeat": "2"}
    assert json.loads((config / "inputdataconfig.json").read_text()) == {"train": {
        "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None",
        "ContentType": "text/csv"}}
    assert not (out / "ml" / "input" / "data").exists(), "the copies of the channel data are removed"
    assert sorted(p.name for p in rows.rglob("*")) == ["a.csv", "b.csv", "part"], "the user's data is untouched"
    # metrics: a runtime metric line and a user regex, through MetricDefinitions; printed at the end
    job = json.loads((out / "job.json").read_text())
    assert job["TrainingJobStatus"] == "Completed"
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]} == {"rows": 3.0, "counted": 3.0}
    assert job["ModelArtifacts"]["LocalPath"] == str(model)
    lines = res.stderr.splitlines()
    assert "[train] training echo model prefix=yo repeat=2 rows=3" in lines  # streamed, prefixed
    table = lines[lines.index(next(line for line in lines if line.startswith("metrics of "))):]
    assert any(line.split() == ["rows", "3"] for line in table)
    assert any(line.split() == ["counted", "3"] for line in table)
    name = job["TrainingJobName"]
    assert f"next: rosetta endpoint up {name} --image {echo_image} --model {model}" in res.stderr
    assert error_lines(res.stderr) == []


@pytest.mark.docker
def test_json_encoding_and_the_default_output_folder(echo_image: str, rows: Path, tmp_path: Path) -> None:
    res = train(echo_image, "--channel", f"train={rows}", "--hp", "prefix=yo", "--hp", "repeat=2",
                "--hp-encoding", "json", "--job-name", "enc-test", "--metric", "undeclared-is-fine",
                cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "rosetta-train" / "enc-test"
    assert res.stdout.strip() == str(out / "model.tar.gz")
    # SDK v2 framework estimators' encoding (T-02): json.dumps of each value
    hps = json.loads((out / "ml" / "input" / "config" / "hyperparameters.json").read_text())
    assert hps == {"prefix": '"yo"', "repeat": "2"}
    assert json.loads(members(out / "model.tar.gz")["model.json"])["prefix"] == '"yo"'  # what the image got
    # the executor's hint about a metric line nobody declared names this command's option
    assert "[train] [rosetta] metric 'rows' was printed but no --metric declares it" in res.stderr
    assert "add --metric rows" in res.stderr


@pytest.mark.docker
def test_bad_hyperparameter_is_one_error_line_from_the_failure_file(echo_image: str, rows: Path,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "job"
    (out).mkdir()
    (out / "job.json").write_text("{}")  # an earlier job's folder is reused: its model must not survive
    (out / "model.tar.gz").write_text("stale")
    res = train(echo_image, "--channel", f"train={rows}", "--hp", "repeat=x", "--output", str(out))
    assert res.returncode == 1
    assert error_lines(res.stderr) == ["error: HyperparameterError: repeat: expected an integer, got 'x'"]
    assert (out / "failure").read_text().startswith("HyperparameterError: repeat: expected an integer, got 'x'\n")
    assert "exit code 1" in res.stderr and str(out / "failure") in res.stderr
    assert not (out / "model.tar.gz").exists()
    job = json.loads((out / "job.json").read_text())
    assert (job["TrainingJobStatus"], job["ExitCode"]) == ("Failed", 1)
    assert job["FailureReason"] == "HyperparameterError: repeat: expected an integer, got 'x'"
    assert res.stdout == ""


def _rosetta_subprocess(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagemaker_rosetta.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, timeout=300, check=False)


def test_missing_channel_path_fails_before_docker(rows: Path, tmp_path: Path) -> None:
    nowhere = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}  # any Docker call would fail
    res = _rosetta_subprocess("train", "rosetta-test/echo:latest", "--channel", f"train={rows}",
                              "--channel", f"extra={tmp_path / 'missing'}", "--output", str(tmp_path / "job"),
                              env=nowhere)
    assert res.returncode == 2
    assert error_lines(res.stderr) == [f"error: --channel extra={tmp_path / 'missing'}: "
                                       f"{tmp_path / 'missing'} does not exist"]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "job").exists()
    # the control: the same command with the channel present does reach the (absent) engine
    res = _rosetta_subprocess("train", "rosetta-test/echo:latest", "--channel", f"train={rows}",
                              "--output", str(tmp_path / "job"), env=nowhere)
    assert res.returncode == 2 and "does not exist" not in res.stderr
    assert len(error_lines(res.stderr)) == 1, res.stderr


def test_arguments_are_checked_before_anything_runs(rows: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    cases = {
        ("--channel", f"train={rows}", "--output", str(mine)): "is not empty and holds no job.json",
        ("--channel", "train=s3://bucket/data"): "give a local file or folder",
        ("--channel", f"bad/name={rows}"): "a channel name is 1-64 characters",
        ("--channel", f"train={rows}", "--channel", f"train={rows}"): "--channel train is given twice",
        ("--hp", "novalue"): "--hp expects NAME=VALUE",
        ("--metric", "loss=([0-9]"): "is not a regular expression",
        ("--metric", "loss=loss: [0-9.]+"): "needs a group around the value",
        ("--env", "1BAD=x"): "--env 1BAD",
        ("--job-name", "bad_name"): "SageMaker's TrainingJobName",
        ("--max-runtime", "0"): "at least 1 second",
        ("--instance-count", "0"): "at least 1",
    }
    for args, message in cases.items():
        res = train("rosetta-test/echo:latest", *args)
        assert res.returncode == 2, (args, res.stderr)
        lines = error_lines(res.stderr)
        assert len(lines) == 1 and message in lines[0], (args, res.stderr)
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_encodings_names_and_limits(tmp_path: Path) -> None:
    raw = {"n": "200", "lr": "0.5", "name": "abc", "flag": "true", "layers": "[1, 2]", "quoted": '"x"'}
    assert encode_hyperparameters(raw, "str") == raw
    assert encode_hyperparameters(raw, "json") == {"n": "200", "lr": "0.5", "name": '"abc"', "flag": "true",
                                                   "layers": "[1, 2]", "quoted": '"x"'}
    with pytest.raises(TrainUsageError, match="at most 100"):
        encode_hyperparameters({f"k{i}": "v" for i in range(101)}, "str")
    with pytest.raises(TrainUsageError, match="values up to 2500"):
        encode_hyperparameters({"k": "v" * 2501}, "str")
    with pytest.raises(TrainUsageError, match="given twice"):
        pairs(["a=1", "a=2"], "--hp")
    assert pairs(["a=b=c"], "--hp") == {"a": "b=c"}
    import datetime as dt

    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    assert job_name_for("123.dkr.ecr.us-east-1.amazonaws.com/team/iris_model:v2", None, when) == \
        "iris-model-2024-05-06-07-08-09-123"
    long_name = job_name_for("x" * 80, None, when)
    assert len(long_name) <= 63 and long_name.endswith("-2024-05-06-07-08-09-123")
    assert metrics_of(["acc"]) == [{"Name": "acc", "Regex": "#metric acc=(\\S+)"}]
    assert metrics_of(["loss=loss: ([0-9.]+)"]) == [{"Name": "loss", "Regex": "loss: ([0-9.]+)"}]
    with pytest.raises(TrainUsageError, match="given twice"):
        metrics_of(["acc", "acc=acc (.*)"])
    (tmp_path / "f.csv").write_text("1\n")
    assert channels_of([f"train={tmp_path / 'f.csv'}"]) == {"train": tmp_path / "f.csv"}


@pytest.mark.docker
def test_instance_count(echo_image: str, rows: Path, tmp_path: Path) -> None:
    """``--instance-count N`` goes to the local trainer when it runs several instances, else a clear error."""
    res = train(echo_image, "--channel", f"train={rows}", "--instance-count", "2", "--output", str(tmp_path / "j"))
    if multi_instance_support(training.run_training) is None:
        assert res.returncode == 2
        assert "the local trainer runs one instance per job for now" in error_lines(res.stderr)[0]
        assert not (tmp_path / "j").exists()
    else:
        assert res.returncode == 0, res.stderr
        assert sorted(p.name for p in (tmp_path / "j" / "hosts").iterdir()) == ["algo-1", "algo-2"]
        job = json.loads((tmp_path / "j" / "job.json").read_text())
        assert job["ResourceConfig"]["InstanceCount"] == 2
        assert "[train] [algo-2] training echo model" in res.stderr


def _containers(prefix: str) -> list[str]:
    names = subprocess.run([docker(), "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                           check=True).stdout.split()
    return [n for n in names if n.startswith(prefix)]


@pytest.mark.docker
def test_ctrl_c_removes_the_container(echo_image: str, rows: Path, tmp_path: Path) -> None:
    from sagemaker_rosetta.images import docker_build

    context = tmp_path / "sleeper"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {echo_image}\n"
        "RUN printf '#!/bin/sh\\necho sleeping\\nexec sleep 300\\n' > /usr/local/bin/train "
        "&& chmod +x /usr/local/bin/train\n"
        "ENTRYPOINT []\n")
    docker_build(SLEEPER, context / "Dockerfile", context)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sagemaker_rosetta.cli", "train", SLEEPER, "--channel", f"train={rows}",
         "--output", str(tmp_path / "job")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's foreground job
    ours = f"rosetta-train-{proc.pid}-"
    try:
        deadline = time.monotonic() + 120
        while not _containers(ours) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
        assert _containers(ours), "the training container should be running"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        for name in _containers(ours):
            subprocess.run([docker(), "rm", "-f", name], capture_output=True, check=False)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; the job's container was removed" in err
    assert _containers(ours) == []


# -- a runtime example image --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iris_python() -> str:
    from sagemaker_rosetta import local_images

    if not local_images.exists(IRIS_PYTHON):
        from sagemaker_rosetta import images

        images.build_examples(["iris-python"], lambda _msg: None)
    return IRIS_PYTHON


@pytest.mark.docker
def test_iris_python_job_and_its_metric(iris_python: str, tmp_path: Path) -> None:
    out = tmp_path / "iris"
    res = train(iris_python, "--channel", f"train={IRIS_TRAIN}", "--hp", "n_estimators=10", "--hp", "target=species",
                "--hp-encoding", "json", "--metric", "train_accuracy", "--output", str(out))
    assert res.returncode == 0, res.stderr
    files = members(out / "model.tar.gz")
    assert sorted(files) == ["model.pkl", "rosetta.json"]
    meta = json.loads(files["rosetta.json"])  # D2: the table's columns less the target
    assert meta["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    # both encodings reach the runtime's decoder (T-02): the JSON-quoted target is read as species
    assert json.loads((out / "ml" / "input" / "config" / "hyperparameters.json").read_text())["target"] == \
        '"species"'
    metrics = {m["MetricName"]: m["Value"] for m in json.loads((out / "job.json").read_text())["FinalMetricDataList"]}
    assert 0.9 <= metrics["train_accuracy"] <= 1.0
    assert any(line.startswith("train_accuracy") for line in res.stderr.splitlines())


@pytest.mark.docker
def test_iris_python_bad_hyperparameter(iris_python: str, tmp_path: Path) -> None:
    res = train(iris_python, "--channel", f"train={IRIS_TRAIN}", "--hp", "n_estimators=ten",
                "--output", str(tmp_path / "bad"))
    assert res.returncode == 1
    assert error_lines(res.stderr) == ["error: HyperparameterError: n_estimators: expected an integer, got 'ten'"]
    assert not (tmp_path / "bad" / "model.tar.gz").exists()
