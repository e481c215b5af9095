"""Create/update and start the pipeline on SageMaker (``upsert``/``start``).

Only this module talks to AWS, and only when the user asks. ``endpoint_url`` points the SageMaker
and S3 clients elsewhere (the tests use a moto server on 127.0.0.1). A Rosetta pipeline goes
through the SDK's ``Pipeline.upsert``/``start``; an SDK-native file or a definition JSON through
CreatePipeline/UpdatePipeline and StartPipelineExecution with its definition, as the SDK does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rosetta_orchestrator.loader import Source
from rosetta_orchestrator.sdk import DEFAULT_ROLE, session

Say = Callable[[str], None]


class PlaceholderRole(ValueError):
    """The definition would send Rosetta's placeholder role ARN to AWS."""


def clients(region: str | None, endpoint_url: str | None, s3_endpoint_url: str | None) -> tuple[Any, Any]:
    import boto3

    sm = boto3.client("sagemaker", region_name=region, endpoint_url=endpoint_url)
    s3 = boto3.client("s3", region_name=region, endpoint_url=s3_endpoint_url or endpoint_url)
    return sm, s3


def upload_assets(assets: Mapping[str, Path], s3: Any, say: Say) -> list[str]:
    """Put the pipeline's code and seed data at their S3 URIs (content-hashed keys)."""
    from rosetta_orchestrator.local.store import split_uri

    done = []
    for uri, path in assets.items():
        bucket, key = split_uri(uri)
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
    if source.pipeline is not None:
        sdk_pipe = source.pipeline.sdk_pipeline()
        sdk_pipe.sagemaker_session = session(source.pipeline.bucket, region=region, sagemaker_client=sm)
        response = dict(sdk_pipe.upsert(role_arn=role_arn, description=source.description or None))
    else:
        request = {"PipelineName": source.name, "PipelineDefinition": json.dumps(source.definition),
                   "RoleArn": role_arn}
        if source.description:
            request["PipelineDescription"] = source.description
        try:
            response = dict(sm.create_pipeline(**request))
        except (sm.exceptions.ResourceInUse, sm.exceptions.ClientError) as exc:
            if "exist" not in str(exc).lower() and not isinstance(exc, sm.exceptions.ResourceInUse):
                raise
            response = dict(sm.update_pipeline(**request))
    say(f"pipeline {source.name}: {response.get('PipelineArn')}")
    return response


def start(source: Source, *, parameters: Mapping[str, str] | None = None, region: str | None = None,
          endpoint_url: str | None = None, say: Say = print) -> str:
    """``StartPipelineExecution``; returns the execution ARN (the pipeline must exist: upsert)."""
    sm, _ = clients(region, endpoint_url, None)
    if source.pipeline is not None:
        sdk_pipe = source.pipeline.sdk_pipeline()
        sdk_pipe.sagemaker_session = session(source.pipeline.bucket, region=region, sagemaker_client=sm)
        execution = sdk_pipe.start(parameters=dict(parameters or {}) or None)
        arn = str(execution.arn)
    else:
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
