"""The one place that imports the SageMaker SDK (3.x), after making it safe to use offline.

SDK 3.x needs a region at import time, probes STS/IAM for the account and role, and sends
telemetry unless opted out (see docs/…/sagemaker-sdk-offline.md, Q2). Building a definition
must make zero network calls, so every import of ``sagemaker`` goes through :func:`sdk`.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

#: SageMaker config that opts out of telemetry (no STS call, no GET to the telemetry bucket)
TELEMETRY_OPT_OUT: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}

DEFAULT_REGION = "us-east-1"
DEFAULT_ROLE = "arn:aws:iam::123456789012:role/RosettaSageMakerRole"
#: the account of local runs: default buckets (``sagemaker-<region>-000000000000``) and local ARNs
LOCAL_ACCOUNT = "000000000000"


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
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.parameter import (
        CategoricalParameter,
        ContinuousParameter,
        IntegerParameter,
        ParameterRange,
    )
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        MetricDefinition,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow import conditions
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep, TuningStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import (
        Channel,
        CheckpointConfig,
        Compute,
        DataSource,
        InputData,
        OutputDataConfig,
        S3DataSource,
        StoppingCondition,
    )
    from sagemaker.train.model_trainer import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner

    return SimpleNamespace(
        CategoricalParameter=CategoricalParameter,
        ContinuousParameter=ContinuousParameter,
        IntegerParameter=IntegerParameter,
        ParameterRange=ParameterRange,
        TuningStep=TuningStep,
        HyperparameterTuner=HyperparameterTuner,
        Channel=Channel,
        CheckpointConfig=CheckpointConfig,
        DataSource=DataSource,
        S3DataSource=S3DataSource,
        MetricsSource=MetricsSource,
        ModelMetrics=ModelMetrics,
        MetricDefinition=MetricDefinition,
        conditions=conditions,
        PropertyFile=PropertyFile,
        ConditionStep=ConditionStep,
        FailStep=FailStep,
        CacheConfig=CacheConfig,
        StepRetryPolicy=StepRetryPolicy,
        StepExceptionTypeEnum=StepExceptionTypeEnum,
        SageMakerJobStepRetryPolicy=SageMakerJobStepRetryPolicy,
        SageMakerJobExceptionTypeEnum=SageMakerJobExceptionTypeEnum,
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
    sess = s.PipelineSession(**kwargs)
    # default_bucket() checks (or creates) the bucket with S3 calls the first time it is asked, and
    # ModelBuilder.register() asks while it builds the step arguments: the bucket is ours to name,
    # so mark it resolved (the attribute default_bucket() returns when set)
    sess._default_bucket = bucket
    return sess


#: a SageMaker config that opts out of telemetry, for sessions that users build themselves
_OPT_OUT_YAML = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"


@contextmanager
def offline_build(uploads: dict[str, Path], account: str | Callable[[], str] = LOCAL_ACCOUNT) -> Iterator[None]:
    """Build an SDK-native pipeline (a user's own ``PipelineSession()``, ``ModelTrainer`` without an
    output path, ``ScriptProcessor(code=…)``…) with no network call.

    Inside the block: the SDK's default bucket is ``sagemaker-<region>-<account>`` without the STS
    lookup or the bucket check (``account`` is 000000000000 for local runs; ``upsert`` passes the
    real one, so the definition names the same bucket the SDK would); telemetry is opted out through
    the documented admin config file (``SAGEMAKER_ADMIN_CONFIG_OVERRIDE``) unless the user set one;
    and every upload the SDK makes while it builds (code, scripts) is captured into ``uploads``
    (S3 URI → local copy): the local runner stages them, ``upsert`` uploads them itself.
    A callable ``account`` is asked once, and only if the SDK needs its default bucket.
    """
    resolved: list[str] = []

    def account_id() -> str:
        if not resolved:
            resolved.append(account() if callable(account) else account)
        return resolved[0]

    offline_env()
    if not os.environ.get("SAGEMAKER_ADMIN_CONFIG_OVERRIDE"):
        cfg = Path(tempfile.gettempdir()) / f"rosetta-sagemaker-config-{os.getuid()}.yaml"
        cfg.write_text(_OPT_OUT_YAML)
        os.environ["SAGEMAKER_ADMIN_CONFIG_OVERRIDE"] = str(cfg)
    sdk()
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.s3.client import S3Uploader

    staging = Path(tempfile.mkdtemp(prefix="rosetta-sdk-uploads-"))
    atexit.register(shutil.rmtree, staging, True)  # the copies are staged after the block, until exit

    def keep(uri: str, source: Path | bytes) -> None:
        target = staging / str(len(uploads)) / uri.rsplit("/", 1)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        elif source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        uploads[uri] = target

    def upload_data(self: Any, path: str, bucket: str | None = None, key_prefix: str = "data",
                    callback: Any = None, extra_args: Any = None) -> str:
        bucket = bucket or self.default_bucket()
        src = Path(path)
        uri = f"s3://{bucket}/{key_prefix}" + ("" if src.is_dir() else f"/{src.name}")
        keep(uri, src)
        return uri

    def upload_string(self: Any, body: str, bucket: str, key: str, kms_key: Any = None) -> str:
        uri = f"s3://{bucket}/{key}"
        keep(uri, body.encode())
        return uri

    def upload_bytes(b: Any, s3_uri: str, kms_key: Any = None, sagemaker_session: Any = None) -> str:
        keep(s3_uri, b if isinstance(b, bytes) else b.getvalue())
        return s3_uri

    patches: list[tuple[Any, str, Any]] = [
        (Session, "generate_default_sagemaker_bucket_name",
         lambda self, boto_session: f"sagemaker-{boto_session.region_name}-{account_id()}"),
        (Session, "_create_s3_bucket_if_it_does_not_exist", lambda self, bucket_name, region: None),
        (Session, "account_id", lambda self: account_id()),
        (Session, "upload_data", upload_data),
        (Session, "upload_string_as_file_body", upload_string),
        (S3Uploader, "upload_bytes", staticmethod(upload_bytes)),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
