"""Create/update and start the pipeline on SageMaker (``upsert``/``start``).

Only this module talks to AWS, and only when the user asks. ``endpoint_url`` points the SageMaker
(and STS) clients elsewhere, ``s3_endpoint_url`` the S3 client (the tests use a moto server on
127.0.0.1). Every form goes the same way the SDK's ``Pipeline.upsert``/``start`` go: the assets
(Rosetta's ``upload()``s, the code the SDK uploads while it builds) are put in S3 first, then
CreatePipeline (or UpdatePipeline when it exists) with the definition JSON, and
StartPipelineExecution with the parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rosetta_orchestrator.loader import Source
from rosetta_orchestrator.sdk import DEFAULT_ROLE

Say = Callable[[str], None]


class PlaceholderRole(ValueError):
    """The definition would send Rosetta's placeholder role ARN to AWS."""


def clients(region: str | None, endpoint_url: str | None, s3_endpoint_url: str | None) -> tuple[Any, Any]:
    import boto3

    sm = boto3.client("sagemaker", region_name=region, endpoint_url=endpoint_url)
    s3 = boto3.client("s3", region_name=region, endpoint_url=s3_endpoint_url or endpoint_url)
    return sm, s3


def account_id(region: str | None, endpoint_url: str | None) -> str:
    """The caller's account (STS), which names the SDK's default bucket ``sagemaker-<region>-<account>``."""
    import boto3

    return str(boto3.client("sts", region_name=region, endpoint_url=endpoint_url).get_caller_identity()["Account"])


def upload_assets(assets: Mapping[str, Path], s3: Any, say: Say) -> list[str]:
    """Put the pipeline's code and seed data at their S3 URIs (content-hashed keys); a missing
    bucket is created, as the SDK does for its default bucket."""
    from rosetta_orchestrator.local.store import split_uri

    done = []
    buckets: set[str] = set()
    for uri, path in assets.items():
        bucket, key = split_uri(uri)
        if bucket not in buckets:
            try:
                s3.head_bucket(Bucket=bucket)
            except s3.exceptions.ClientError:
                s3.create_bucket(Bucket=bucket)
                say(f"created bucket {bucket}")
            buckets.add(bucket)
        files = [(path, key)] if path.is_file() else [
            (f, f"{key.rstrip('/')}/{f.relative_to(path).as_posix()}") for f in sorted(path.rglob("*")) if f.is_file()]
        for f, k in files:
            s3.upload_file(str(f), bucket, k)
            done.append(f"s3://{bucket}/{k}")
            say(f"uploaded {f} → s3://{bucket}/{k}")
    return done


def check_role(source: Source, role: str | None) -> str:
    """The role to send; refuses Rosetta's placeholder ARN wherever the definition carries it."""
    effective = role or source.role
    if source.kind != "rosetta" and not effective:
        raise PlaceholderRole(f"{source.path.name}: give the pipeline's execution role with --role ARN")
    if effective == DEFAULT_ROLE:
        raise PlaceholderRole(f"the pipeline's role is Rosetta's placeholder {DEFAULT_ROLE}, which does not exist "
                              "in your account: pass --role arn:aws:iam::<account>:role/<SageMaker execution role> "
                              "or Pipeline(role=...)")
    carrying = [s["Name"] for s in _all_steps(source.definition) if DEFAULT_ROLE in json.dumps(s.get("Arguments"))]
    if carrying:
        raise PlaceholderRole(f"step(s) {', '.join(carrying)} carry Rosetta's placeholder role {DEFAULT_ROLE}: "
                              "pass --role ARN (it becomes the role of every step) or set Pipeline(role=...)")
    return str(effective)


def _all_steps(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in definition.get("Steps") or []:
        out.append(s)
        if s.get("Type") == "Condition":
            args = s.get("Arguments") or {}
            out += _all_steps({"Steps": [*(args.get("IfSteps") or []), *(args.get("ElseSteps") or [])]})
    return out


def upsert(source: Source, *, role: str | None = None, region: str | None = None,
           endpoint_url: str | None = None, s3_endpoint_url: str | None = None,
           upload: bool = True, say: Say = print) -> dict[str, Any]:
    """``CreatePipeline`` or ``UpdatePipeline`` with the definition; uploads a Rosetta pipeline's assets first."""
    role_arn = check_role(source, role)
    sm, s3 = clients(region, endpoint_url, s3_endpoint_url)
    if upload and source.assets:
        upload_assets(source.assets, s3, say)
    request = {"PipelineName": source.name, "PipelineDefinition": json.dumps(source.definition),
               "RoleArn": role_arn}
    if source.description:
        request["PipelineDescription"] = source.description
    try:
        response = dict(sm.create_pipeline(**request))
    except (sm.exceptions.ResourceInUse, sm.exceptions.ClientError) as exc:
        if "exist" not in str(exc).lower() and not isinstance(exc, sm.exceptions.ResourceInUse):
            raise
        response = dict(sm.update_pipeline(**{k: v for k, v in request.items()}))
    say(f"pipeline {source.name}: {response.get('PipelineArn')}")
    return response


def start(source: Source, *, parameters: Mapping[str, str] | None = None, region: str | None = None,
          endpoint_url: str | None = None, say: Say = print) -> str:
    """``StartPipelineExecution``; returns the execution ARN (the pipeline must exist: upsert)."""
    sm, _ = clients(region, endpoint_url, None)
    declared = {p["Name"] for p in source.definition.get("Parameters") or []}
    unknown = set(parameters or {}) - declared
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}; "
                         f"declared: {', '.join(sorted(declared))}")
    kwargs: dict[str, Any] = {"PipelineName": source.name}
    if parameters:
        kwargs["PipelineParameters"] = [{"Name": k, "Value": str(v)} for k, v in parameters.items()]
    arn = str(sm.start_pipeline_execution(**kwargs)["PipelineExecutionArn"])
    say(f"started {arn}")
    return arn
