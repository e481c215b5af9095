"""The one place that imports the SageMaker SDK (3.x), after making it safe to use offline.

SDK 3.x needs a region at import time, probes STS/IAM for the account and role, and sends
telemetry unless opted out (see docs/…/sagemaker-sdk-offline.md, Q2). Building a definition
must make zero network calls, so every import of ``sagemaker`` goes through :func:`sdk`.
"""

from __future__ import annotations

import json
import os
from functools import cache
from types import SimpleNamespace
from typing import Any

#: SageMaker config that opts out of telemetry (no STS call, no GET to the telemetry bucket)
TELEMETRY_OPT_OUT: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}

DEFAULT_REGION = "us-east-1"
DEFAULT_ROLE = "arn:aws:iam::123456789012:role/RosettaSageMakerRole"


def offline_env() -> None:
    """Environment that keeps the SDK off the network while it builds step arguments.

    A region is required at import (``air_hub`` builds a client at class definition);
    role validation calls IAM SimulatePrincipalPolicy unless disabled. Real credentials,
    when present, are left alone (upsert/start need them); fake ones only fill a gap so
    botocore never probes the instance-metadata service.
    """
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", DEFAULT_REGION))
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
            or os.path.exists(os.path.expanduser("~/.aws/credentials"))):
        os.environ["AWS_ACCESS_KEY_ID"] = "rosetta-offline"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "rosetta-offline"


def _memoize_config_validation() -> None:
    """SDK 3.27 re-validates the session's config against its JSON schema on every config lookup
    (~160 times, 0.3 s each, for the iris pipeline: about a minute of CPU). The config never changes
    within a session, so validate each distinct config once."""
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.validate_sagemaker_config
    if getattr(original, "_rosetta_memoized", False):
        return
    seen: set[str] = set()

    def validate(sagemaker_config: dict[str, Any] | None = None) -> None:
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in seen:
            original(sagemaker_config)
            seen.add(key)

    validate._rosetta_memoized = True  # type: ignore[attr-defined]
    SageMakerConfig.validate_sagemaker_config = staticmethod(validate)


@cache
def sdk() -> SimpleNamespace:
    """The SDK classes Rosetta compiles to (imported once, after :func:`offline_env`)."""
    offline_env()
    _memoize_config_validation()
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep, TransformStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import Compute, InputData, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer

    return SimpleNamespace(
        Processor=Processor,
        ProcessingInput=ProcessingInput,
        ProcessingOutput=ProcessingOutput,
        ProcessingS3Input=ProcessingS3Input,
        ProcessingS3Output=ProcessingS3Output,
        Transformer=Transformer,
        ExecutionVariables=ExecutionVariables,
        Join=Join,
        JsonGet=JsonGet,
        ParameterBoolean=ParameterBoolean,
        ParameterFloat=ParameterFloat,
        ParameterInteger=ParameterInteger,
        ParameterString=ParameterString,
        PipelineSession=PipelineSession,
        ModelStep=ModelStep,
        Pipeline=Pipeline,
        ProcessingStep=ProcessingStep,
        TrainingStep=TrainingStep,
        TransformStep=TransformStep,
        ModelBuilder=ModelBuilder,
        Compute=Compute,
        InputData=InputData,
        OutputDataConfig=OutputDataConfig,
        StoppingCondition=StoppingCondition,
        ModelTrainer=ModelTrainer,
    )


def session(bucket: str, *, region: str | None = None, sagemaker_client: Any = None,
            s3_endpoint_url: str | None = None) -> Any:
    """A ``PipelineSession`` with an explicit default bucket (else STS GetCallerIdentity) and
    telemetry opted out."""
    import boto3

    s = sdk()
    boto_session = boto3.Session(region_name=region or os.environ["AWS_DEFAULT_REGION"])
    kwargs: dict[str, Any] = {"boto_session": boto_session, "default_bucket": bucket,
                              "sagemaker_config": TELEMETRY_OPT_OUT}
    if sagemaker_client is not None:
        kwargs["sagemaker_client"] = sagemaker_client
    return s.PipelineSession(**kwargs)
