"""Create/update and start the pipeline on SageMaker through the SDK (``upsert``/``start``).

Only this module talks to AWS, and only when the user asks. ``endpoint_url`` points the SageMaker
and S3 clients elsewhere (the tests use a moto server on 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rosetta_orchestrator.api import Pipeline
from rosetta_orchestrator.sdk import session

Say = Callable[[str], None]


def clients(region: str | None, endpoint_url: str | None, s3_endpoint_url: str | None) -> tuple[Any, Any]:
    import boto3

    sm = boto3.client("sagemaker", region_name=region, endpoint_url=endpoint_url)
    s3 = boto3.client("s3", region_name=region, endpoint_url=s3_endpoint_url or endpoint_url)
    return sm, s3


def upload_assets(pipeline: Pipeline, s3: Any, say: Say) -> list[str]:
    """Put the pipeline's code and seed data at their S3 URIs (content-hashed keys)."""
    from rosetta_orchestrator.local.store import split_uri

    done = []
    for uri, path in pipeline.assets.items():
        bucket, key = split_uri(uri)
        files = [(path, key)] if path.is_file() else [
            (f, f"{key.rstrip('/')}/{f.relative_to(path).as_posix()}") for f in sorted(path.rglob("*")) if f.is_file()]
        for f, k in files:
            s3.upload_file(str(f), bucket, k)
            done.append(f"s3://{bucket}/{k}")
            say(f"uploaded {f} → s3://{bucket}/{k}")
    return done


def upsert(pipeline: Pipeline, *, role: str | None = None, region: str | None = None,
           endpoint_url: str | None = None, s3_endpoint_url: str | None = None,
           upload: bool = True, say: Say = print) -> dict[str, Any]:
    """``CreatePipeline`` or ``UpdatePipeline`` with the SDK's definition; uploads assets first."""
    sm, s3 = clients(region, endpoint_url, s3_endpoint_url)
    if upload:
        upload_assets(pipeline, s3, say)
    sdk_pipe = pipeline.sdk_pipeline()
    sdk_pipe.sagemaker_session = session(pipeline.bucket, region=region, sagemaker_client=sm)
    response = sdk_pipe.upsert(role_arn=role or pipeline.role, description=pipeline.description or None)
    say(f"pipeline {pipeline.name}: {response.get('PipelineArn')}")
    return dict(response)


def start(pipeline: Pipeline, *, parameters: Mapping[str, str] | None = None, region: str | None = None,
          endpoint_url: str | None = None, say: Say = print) -> str:
    """``StartPipelineExecution``; returns the execution ARN (the pipeline must exist: upsert)."""
    sm, _ = clients(region, endpoint_url, None)
    sdk_pipe = pipeline.sdk_pipeline()
    sdk_pipe.sagemaker_session = session(pipeline.bucket, region=region, sagemaker_client=sm)
    execution = sdk_pipe.start(parameters=dict(parameters or {}) or None)
    say(f"started {execution.arn}")
    return str(execution.arn)
