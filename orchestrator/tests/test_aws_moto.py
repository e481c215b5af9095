"""``upsert``/``start`` against a moto server on 127.0.0.1: the API call shapes only.

moto stores the pipeline and reports every execution as Succeeded at once; it does not run steps,
validate the definition, or check the role. Real SageMaker is untested here (no AWS account).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from orch_helpers import HERE, ROOT, rosetta

IRIS = ROOT / "examples" / "iris" / "pipeline.py"
ROLE = "arn:aws:iam::123456789012:role/TestSageMakerRole"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def client(service: str, url: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=url)


def test_upsert_then_start(moto_url: str) -> None:
    s3 = client("s3", moto_url)
    s3.create_bucket(Bucket="rosetta-iris")
    # one process: upload assets, CreatePipeline, StartPipelineExecution
    res = rosetta("start", str(IRIS), "--upsert", "--endpoint-url", moto_url, "--param", "RNTree=50",
                  "--role", ROLE, guard=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "NETGUARD_ATTEMPTS 0" in res.stderr, res.stderr[-3000:]  # only the loopback moto server

    sm = client("sagemaker", moto_url)
    described = sm.describe_pipeline(PipelineName="rosetta-iris")
    definition = json.loads(described["PipelineDefinition"])
    assert definition["Steps"][0]["Name"] == "Split"
    assert described["RoleArn"] == ROLE
    # --role is also every step's role (the placeholder never reaches AWS)
    assert "RosettaSageMakerRole" not in described["PipelineDefinition"] and ROLE in described["PipelineDefinition"]
    # the code and seed data the definition points at were uploaded first
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="rosetta-iris")["Contents"]}
    split_code = next(i["S3Input"]["S3Uri"] for s in definition["Steps"] if s["Name"] == "Split"
                      for i in s["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    assert split_code.removeprefix("s3://rosetta-iris/") in keys
    assert "rosetta-iris/assets/iris-labelled/train.csv" in keys

    arn = res.stdout.strip().splitlines()[-1]
    assert arn.startswith("arn:aws:sagemaker:us-east-1:") and "/rosetta-iris/execution/" in arn
    execs = sm.list_pipeline_executions(PipelineName="rosetta-iris")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in execs] == [arn]
    # moto reports Succeeded immediately; it ran nothing
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Succeeded"

    # a second upsert updates the same pipeline
    res = rosetta("upsert", str(IRIS), "--endpoint-url", moto_url, "--no-upload", "--role", ROLE)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]] == ["rosetta-iris"]


def test_guard_catches_real_aws_calls() -> None:
    """The network guard is real: upsert without an endpoint tries AWS and is refused."""
    res = rosetta("upsert", str(IRIS), "--no-upload", "--role", ROLE, guard=True, env={"AWS_MAX_ATTEMPTS": "1"})
    assert res.returncode != 0
    assert "NETGUARD_ATTEMPTS 0" not in res.stderr and "sagemaker.us-east-1.amazonaws.com" in res.stderr


def test_definition_json_and_sdk_file(moto_url: str, tmp_path: Path) -> None:
    """The other two input forms: an SDK-native file (its own session: every AWS client of the
    process is pointed at moto with AWS_ENDPOINT_URL) and a definition JSON (CreatePipeline,
    then UpdatePipeline, and StartPipelineExecution with its parameters)."""
    sdk_file = HERE / "pipelines" / "sdk_native.py"
    env = {"AWS_ENDPOINT_URL": moto_url}
    res = rosetta("upsert", str(sdk_file), guard=True, env=env)
    assert res.returncode == 2
    assert "error: sdk_native.py: give the pipeline's execution role with --role ARN" in res.stderr
    res = rosetta("upsert", str(sdk_file), "--role", ROLE, guard=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "NETGUARD_ATTEMPTS 0" in res.stderr, res.stderr[-3000:]
    sm = client("sagemaker", moto_url)
    stored = json.loads(sm.describe_pipeline(PipelineName="sdk-native-test")["PipelineDefinition"])
    assert [s["Name"] for s in stored["Steps"]] == ["Prepare", "Train", "Model", "Transform", "Evaluate", "Gate"]
    code = stored["Steps"][0]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    bucket, key = code.removeprefix("s3://").split("/", 1)
    assert client("s3", moto_url).get_object(Bucket=bucket, Key=key)["Body"].read() == (
        HERE / "pipelines" / "prepare.py").read_bytes()  # the SDK uploaded its code to (moto) S3

    (tmp_path / "echo-json.json").write_text(json.dumps(stored))
    for _ in range(2):  # create, then update
        res = rosetta("upsert", str(tmp_path / "echo-json.json"), "--role", ROLE, "--endpoint-url", moto_url)
        assert res.returncode == 0, res.stderr[-3000:]
    res = rosetta("start", str(tmp_path / "echo-json.json"), "--endpoint-url", moto_url, "--param", "MinRows=3")
    assert res.returncode == 0, res.stderr[-3000:]
    arn = res.stdout.strip().splitlines()[-1]
    assert "/echo-json/execution/" in arn
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert params == [{"Name": "MinRows", "Value": "3"}]
    res = rosetta("start", str(tmp_path / "echo-json.json"), "--endpoint-url", moto_url, "--param", "Nope=1")
    assert res.returncode == 2 and "error: unknown parameter(s): Nope; declared: MinRows, Prefix" in res.stderr
