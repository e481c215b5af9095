"""Run a train → model → transform pipeline with the SDK's own ``LocalPipelineSession`` (AWS local mode).

SDK 3.27 needs three shims (see sagemaker-sdk-offline.md, Q3): a ``_user_agent_creator`` stub on
``LocalSagemakerClient`` (ModelBuilder.build), a hybrid session (the core session builds step
arguments, the mlops session runs them), and a loopback-only port mapping for the serving container.
They touch private APIs, so they live here, pinned to the tested SDK version. Needs Debian's
``docker-compose`` 1.29.2 (``apt-get install --no-install-recommends docker-compose``).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/RosettaSageMakerRole"


def apply_shims() -> None:
    from sagemaker.core.local.image import _SageMakerContainer
    from sagemaker.core.local.local_session import LocalSagemakerClient

    LocalSagemakerClient._user_agent_creator = type("UA", (), {"to_string": lambda self: ""})()
    original = _SageMakerContainer._create_docker_host
    if getattr(original, "_rosetta_loopback", False):
        return

    def loopback(self: Any, *args: Any, **kwargs: Any) -> Any:
        cfg = original(self, *args, **kwargs)
        if "ports" in cfg:  # the SDK publishes 8080 on every interface
            cfg["ports"] = ["127.0.0.1:" + p for p in cfg["ports"]]
        return cfg

    loopback._rosetta_loopback = True  # type: ignore[attr-defined]
    _SageMakerContainer._create_docker_host = loopback


def run_sdk_local(image: str, *, train_dir: Path, batch_dir: Path, out_dir: Path, work: Path,
                  hyperparameters: dict[str, str], content_type: str = "text/csv") -> dict[str, Any]:
    """Build and run the 3-step pipeline in SDK local mode; status, wall seconds, step statuses."""
    apply_shims()
    work.mkdir(parents=True, exist_ok=True)
    # LocalPipelineSession takes no sagemaker_config: opt out of telemetry through the override file
    opt_out = work / "sdk-defaults.yaml"
    opt_out.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    previous = os.environ.get("SAGEMAKER_USER_CONFIG_OVERRIDE")
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(opt_out)
    try:
        return _run(image, train_dir=train_dir, batch_dir=batch_dir, out_dir=out_dir, work=work,
                    hyperparameters=hyperparameters, content_type=content_type)
    finally:  # the SDK reads this file whenever it builds a LocalSession later in the process
        if previous is None:
            os.environ.pop("SAGEMAKER_USER_CONFIG_OVERRIDE", None)
        else:
            os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = previous


def _run(image: str, *, train_dir: Path, batch_dir: Path, out_dir: Path, work: Path,
         hyperparameters: dict[str, str], content_type: str) -> dict[str, Any]:
    import boto3
    from sagemaker.core.shapes import S3DataSource
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.pipeline_context import LocalPipelineSession
    from sagemaker.mlops.local import LocalPipelineSession as RunnerSession
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import TrainingStep, TransformStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import Compute, InputData, OutputDataConfig
    from sagemaker.train.model_trainer import ModelTrainer

    boto_session = boto3.Session(region_name="us-east-1")
    config = {"local": {"local_code": True, "container_root": str(work)}}
    sess = LocalPipelineSession(boto_session=boto_session, default_bucket="rosetta-sdk-local")
    sess.config = config
    trainer = ModelTrainer(training_image=image, role=ROLE, sagemaker_session=sess, base_job_name="sdk-train",
                           compute=Compute(instance_type="local", instance_count=1),
                           output_data_config=OutputDataConfig(s3_output_path=f"file://{out_dir}/model"),
                           hyperparameters=hyperparameters)
    train = TrainingStep(name="Train", step_args=trainer.train(input_data_config=[
        InputData(channel_name="train", content_type=content_type, data_source=S3DataSource(
            s3_data_type="S3Prefix", s3_uri=f"file://{train_dir}", s3_data_distribution_type="FullyReplicated"))]))
    builder = ModelBuilder(image_uri=image, s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
                           sagemaker_session=sess, role_arn=ROLE)
    model = ModelStep(name="Model", step_args=builder.build())
    transformer = Transformer(model_name=model.properties.ModelName, instance_count=1, instance_type="local",
                              output_path=f"file://{out_dir}/batch", strategy="MultiRecord",
                              assemble_with="Line", sagemaker_session=sess)
    transform = TransformStep(name="Transform", step_args=transformer.transform(
        data=f"file://{batch_dir}", content_type=content_type, split_type="Line"))
    pipe = Pipeline(name="rosetta-sdk-local", steps=[train, model, transform], sagemaker_session=sess)

    runner = RunnerSession(boto_session=boto_session, default_bucket="rosetta-sdk-local")
    runner.config = config
    t0 = time.monotonic()
    runner.create_pipeline(pipe, "Rosetta images under AWS local mode")
    execution = runner.start_pipeline_execution(PipelineName=pipe.name)
    seconds = time.monotonic() - t0
    described = execution.describe()
    steps = execution.list_steps()["PipelineExecutionSteps"]
    return {"status": described["PipelineExecutionStatus"], "seconds": seconds,
            "steps": {s["StepName"]: s["StepStatus"] for s in steps},
            "step_seconds": {s["StepName"]: float(s["EndTime"]) - float(s["StartTime"])
                             for s in steps if s.get("StartTime") and s.get("EndTime")},
            "failures": {s["StepName"]: s.get("FailureReason") for s in steps if s.get("FailureReason")}}


def remove_leftovers() -> None:
    """Local mode leaves its containers Exited and its network behind (the network is removed
    unless another local-mode run still uses it)."""
    from sagemaker_rosetta.engine import docker

    ids = subprocess.run([docker(), "ps", "-aq", "--filter", "network=sagemaker-local"], capture_output=True,
                         text=True, check=False).stdout.split()
    if ids:
        subprocess.run([docker(), "rm", "-f", *ids], capture_output=True, check=False)
    subprocess.run([docker(), "network", "rm", "sagemaker-local"], capture_output=True, check=False)
