"""``rosetta endpoint`` with one container: boto3's own ``invoke_endpoint`` against the iris
Python image behind the local front (SageMaker Runtime's HTTP API), the CLI's commands, and
``down`` leaving nothing behind. One endpoint serves the whole module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rosetta_testkit.runtimes import RUNTIMES
from rosetta_testkit.session import Models
from sagemaker_rosetta import dockerapi, local_images
from sagemaker_rosetta.endpoint.deploy import NAME_LABEL, STATE_LABEL

PY = RUNTIMES[0]
ROSETTA = [sys.executable, "-m", "sagemaker_rosetta.cli"]


@dataclass
class Live:
    state: Path
    url: str
    name: str

    def client(self) -> Any:
        return boto3.client("sagemaker-runtime", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local",
                            config=Config(retries={"max_attempts": 1}))


def rosetta(state: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*ROSETTA, "endpoint", *args, "--state", str(state)], input=stdin,
                          capture_output=True, timeout=600, check=False)


def containers_of(state: Path, name: str) -> list[str]:
    found = dockerapi.api().containers(all=True, filters={"label": f"{NAME_LABEL}={name}"})
    return [str(c["Id"]) for c in found if c["Labels"].get(STATE_LABEL) == str(state.resolve())]


@pytest.fixture(scope="module")
def live(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    assert local_images.exists(PY.example), f"{PY.example} is missing: run ./dev setup"
    state = tmp_path_factory.mktemp("endpoints")
    model = models.get(PY).model
    up = rosetta(state, "up", "iris", PY.example, "--model", str(model))
    assert up.returncode == 0, up.stderr.decode()
    url = up.stdout.decode().strip().splitlines()[-1]
    try:
        yield Live(state, url, "iris")
    finally:
        rosetta(state, "down", "--all")


def test_boto3_csv(live: Live) -> None:
    resp = live.client().invoke_endpoint(EndpointName=live.name, ContentType="text/csv", Accept="text/csv",
                                         Body=b"5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.1\n", CustomAttributes="trace=1")
    assert resp["Body"].read().decode().split() == ["setosa", "virginica"]
    assert resp["ContentType"].startswith("text/csv")
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["ResponseMetadata"]["RequestId"]


def test_boto3_json(live: Live) -> None:
    resp = live.client().invoke_endpoint(EndpointName=live.name, ContentType="application/json",
                                         Accept="application/json", InferenceId="req-1",
                                         Body=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}))
    assert resp["ContentType"].startswith("application/json")
    assert "setosa" in json.loads(resp["Body"].read())["predictions"][0].__repr__()


def test_container_4xx_is_model_error_with_its_status_and_text(live: Live) -> None:
    client = live.client()
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName=live.name, ContentType="application/x-nope", Body=b"1,2,3,4")
    err = caught.value.response
    assert err["Error"]["Code"] == "ModelError"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 415
    assert "Received client error (415) from primary" in err["Error"]["Message"]
    assert "application/x-nope" in err["OriginalMessage"]
    assert err["LogStreamArn"].endswith(f"/aws/sagemaker/Endpoints/{live.name}:log-stream:AllTraffic/primary")


def test_unknown_endpoint_and_bad_headers_are_validation_errors(live: Live) -> None:
    client = live.client()
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName="nope", ContentType="text/csv", Body=b"1,2,3,4")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nope of account" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName=live.name, ContentType="text/csv", Body=b"1,2,3,4",
                               TargetContainerHostname="primary")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName=live.name, ContentType="text/csv", Body=b"1,2,3,4",
                               TargetModel="m.tar.gz")
    assert "not a multi-model endpoint" in caught.value.response["Error"]["Message"]


def test_cli_invoke_ls_logs(live: Live) -> None:
    out = rosetta(live.state, "invoke", live.name, "--content-type", "text/csv", stdin=b"6.9,3.1,5.4,2.1\n")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "virginica"
    bad = rosetta(live.state, "invoke", live.name, "--content-type", "application/x-nope", stdin=b"1")
    assert bad.returncode == 1
    assert "ModelError" in bad.stderr.decode() and "415" in bad.stderr.decode()
    ls = rosetta(live.state, "ls")
    assert ls.returncode == 0
    row = next(line for line in ls.stdout.decode().splitlines() if line.startswith("iris "))
    assert "InService" in row and "Single" in row and PY.example in row
    logs = rosetta(live.state, "logs", live.name)
    assert logs.returncode == 0
    lines = logs.stdout.decode().splitlines()
    assert lines and all(line.startswith("[primary] ") for line in lines)


def test_up_errors_are_one_line(live: Live, tmp_path: Path) -> None:
    taken = rosetta(live.state, "up", live.name, PY.example, "--model", str(tmp_path))
    assert taken.returncode == 2
    assert taken.stderr.decode().startswith("error: endpoint iris exists already")
    missing = rosetta(live.state, "up", "other", "rosetta-nope/none:latest")
    assert missing.returncode == 2
    assert "is not on the local engine" in missing.stderr.decode()
    assert containers_of(live.state, "other") == []


def test_down_leaves_no_container(models: Models, tmp_path: Path) -> None:
    """A second endpoint of its own (the module's stays up for the others)."""
    state = tmp_path / "eps"
    up = rosetta(state, "up", "gone", PY.example, "--model", str(models.get(PY).model))
    assert up.returncode == 0, up.stderr.decode()
    assert len(containers_of(state, "gone")) == 1
    down = rosetta(state, "down", "gone")
    assert down.returncode == 0, down.stderr.decode()
    assert containers_of(state, "gone") == []
    assert not (state / "endpoints" / "gone").exists()
    assert not (state / "front.json").exists()  # the last endpoint went: the front stopped
    again = rosetta(state, "down", "gone")
    assert again.returncode == 2 and "no endpoint gone" in again.stderr.decode()
