"""``upsert``/``start`` against a moto server on 127.0.0.1: the API call shapes only.

moto stores the pipeline and reports every execution as Succeeded at once; it does not run steps,
validate the definition, or check the role. Real SageMaker is untested here (no AWS account).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from orch_helpers import ROOT, rosetta

IRIS = ROOT / "examples" / "iris" / "pipeline.py"


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
                  guard=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "NETGUARD_ATTEMPTS 0" in res.stderr, res.stderr[-3000:]  # only the loopback moto server

    sm = client("sagemaker", moto_url)
    described = sm.describe_pipeline(PipelineName="rosetta-iris")
    definition = json.loads(described["PipelineDefinition"])
    assert definition["Steps"][0]["Name"] == "Split"
    assert described["RoleArn"] == "arn:aws:iam::123456789012:role/RosettaSageMakerRole"
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
    res = rosetta("upsert", str(IRIS), "--endpoint-url", moto_url, "--no-upload")
    assert res.returncode == 0, res.stderr[-3000:]
    assert [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]] == ["rosetta-iris"]


def test_guard_catches_real_aws_calls() -> None:
    """The network guard is real: upsert without an endpoint tries AWS and is refused."""
    res = rosetta("upsert", str(IRIS), "--no-upload", guard=True, env={"AWS_MAX_ATTEMPTS": "1"})
    assert res.returncode != 0
    assert "NETGUARD_ATTEMPTS 0" not in res.stderr and "sagemaker.us-east-1.amazonaws.com" in res.stderr
