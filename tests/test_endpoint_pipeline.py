"""Inference pipelines in local pipeline runs (the tiny echo image, two models trained with
different prefixes): ``p.model(name, containers=[...])``, batch transform through the chain with
MultiRecord splitting and the per-request record count, a failing container named, and the
run's Model step served by ``rosetta endpoint`` and called with boto3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from rosetta_orchestrator import Pipeline
from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter, RunResult
from rosetta_orchestrator.local.store import LocalStore
from sagemaker_rosetta import dockerapi, local_images
from sagemaker_rosetta.endpoint import daemon, deploy, spec
from sagemaker_rosetta.endpoint.state import State

ECHO = "rosetta-test/echo:latest"
RECORD = "r{:05d}," + "x" * 1000 + "\n"  # 1008 bytes


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, QuietReporter, Path]:
    assert local_images.exists(ECHO), f"{ECHO} is missing: run ./dev setup"
    tmp = tmp_path_factory.mktemp("chain-run")
    (tmp / "train").mkdir()
    (tmp / "train" / "t.csv").write_text("1\n")
    (tmp / "big").mkdir()
    (tmp / "big" / "big.csv").write_text("".join(RECORD.format(i) for i in range(2500)))  # ~2.4 MiB
    (tmp / "poison").mkdir()
    (tmp / "poison" / "good.csv").write_text("g0\ng1\n")
    (tmp / "poison" / "bad.csv").write_text("ok\nPOISON\n")
    p = Pipeline("rosetta-chain-test", bucket="rosetta-test")
    data = p.upload(tmp / "train")
    first = p.training("TrainA", image=ECHO, inputs={"train": data}, hyperparameters={"prefix": "a"})
    second = p.training("TrainB", image=ECHO, inputs={"train": data}, hyperparameters={"prefix": "b"})
    model = p.model("Chain", containers=[first, {"trained_by": second, "hostname": "second"}])
    big = p.upload(tmp / "big")
    # the job's payload limit reaches every container (SAGEMAKER_MAX_PAYLOAD_IN_MB); container 2 gets
    # container 1's answers, which are longer than the records: it needs a larger limit
    p.transform("TChain", model=model, data=big, max_payload_mb=1, env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"})
    p.transform("TChainTight", model=model, data=big, max_payload_mb=1)
    p.transform("TPoison", model=model, data=p.upload(tmp / "poison"))
    p.register("RegisterA", group="rosetta-chain-test", trained_by=first, model_data=first.model_data)
    reporter = QuietReporter()
    result = execute(p, store=LocalStore(tmp / "s3"), workdir=tmp / "runs", parameters={}, reporter=reporter,
                     max_parallel=4)
    return result, reporter, tmp


def _out(result: RunResult, uri: str) -> Path:
    store = result.store
    assert isinstance(store, LocalStore)
    return Path(store.path(uri))


def test_model_step_declares_the_containers(chain_run: tuple[RunResult, QuietReporter, Path]) -> None:
    result, _, _ = chain_run
    props = result.steps["Chain"].properties
    assert [c["Image"] for c in props["Containers"]] == [ECHO, ECHO]
    assert props["Containers"][1]["ContainerHostname"] == "second"
    assert props["InferenceExecutionConfig"] == {"Mode": "Serial"}
    assert all(c["ModelDataUrl"].endswith("/output/model.tar.gz") for c in props["Containers"])


def test_batch_transform_through_the_chain(chain_run: tuple[RunResult, QuietReporter, Path]) -> None:
    result, reporter, _ = chain_run
    step = result.steps["TChain"]
    assert step.status == "Succeeded", step.reason
    out = _out(result, step.properties["TransformOutput"]["S3OutputPath"]) / "big.csv.out"
    assert out.read_text() == "".join("b:a:" + RECORD.format(i) for i in range(2500))
    assert step.properties["Records"] == 2500 and step.properties["Requests"] == 3  # 1 MiB payloads
    # each container logged its own requests, under its hostname; only the first got the job's type
    lines = reporter.lines["TChain"]
    first = [line for line in lines if line.startswith("[container-1] request ")]
    second = [line for line in lines if line.startswith("[second] request ")]
    assert len(first) == len(second) == 3
    assert all("content_type=text/csv" in line for line in first)


def test_failing_container_named_and_its_file_fails(chain_run: tuple[RunResult, QuietReporter, Path]) -> None:
    result, _, _ = chain_run
    tight = result.steps["TChainTight"]
    assert tight.status == "Failed"
    assert "big.csv: container-2 (second): HTTP 413: payload too large" in tight.reason
    step = result.steps["TPoison"]
    assert step.status == "Failed"
    assert "bad.csv: container-1: HTTP 400: row 1: 'POISON' is not a number" in step.reason
    out = _out(result, f"s3://rosetta-test/rosetta-chain-test/runs/{result.execution_id}/TPoison")
    assert (out / "good.csv.out").read_text() == "b:a:g0\nb:a:g1\n"


def test_the_runs_model_step_as_an_endpoint(chain_run: tuple[RunResult, QuietReporter, Path]) -> None:
    _, _, tmp = chain_run
    model = spec.from_pipeline_step("Chain", workdir=tmp / "runs", execution=None, store=str(tmp / "s3"),
                                    s3_endpoint_url=None)
    assert [c.hostname for c in model.containers] == ["container-1", "second"] and model.mode == "Serial"
    state = State(tmp / "eps")
    try:
        deploy.up(state, "chain", model)
        url = daemon.ensure_front(state)
        client = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        resp = client.invoke_endpoint(EndpointName="chain", ContentType="text/csv", Body=b"1\n2\n",
                                      Accept="application/json")
        assert json.loads(resp["Body"].read()) == {"predictions": ["b:a:1", "b:a:2"]}
    finally:
        deploy.down(state, "chain")
        daemon.stop_front(state)
    assert _labelled(state) == []


def test_a_registered_package_as_an_endpoint(chain_run: tuple[RunResult, QuietReporter, Path]) -> None:
    """``rosetta endpoint up NAME --package GROUP/VERSION``, through the CLI."""
    result, _, tmp = chain_run
    assert result.steps["RegisterA"].status == "Succeeded", result.steps["RegisterA"].reason
    state = tmp / "eps-package"
    cli = [sys.executable, "-m", "sagemaker_rosetta.cli", "endpoint"]
    up = subprocess.run([*cli, "up", "pkg", "--package", "rosetta-chain-test/1", "--store", str(tmp / "s3"),
                         "--state", str(state)], capture_output=True, text=True, timeout=300, check=False)
    try:
        assert up.returncode == 0, up.stderr
        assert "from model package rosetta-chain-test/1" in up.stderr
        out = subprocess.run([*cli, "invoke", "pkg", "--state", str(state)], input="x\n", capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "a:x\n"
    finally:
        subprocess.run([*cli, "down", "pkg", "--state", str(state)], capture_output=True, timeout=120, check=False)
    assert _labelled(State(state), "pkg") == []


def _labelled(state: State, name: str = "chain") -> list[Any]:
    found: list[Any] = dockerapi.api().containers(all=True, filters={"label": f"io.rosetta.endpoint.name={name}"})
    return [c for c in found if c["Labels"].get("io.rosetta.endpoint.state") == str(state.root)]

