"""A pipeline written only with the SageMaker SDK's own classes (no Rosetta API), on the echo image.

Prepare (ScriptProcessor: the SDK uploads prepare.py) → Train (ModelTrainer with a MetricDefinition)
→ Model → Transform → Evaluate (a PropertyFile) → Gate (Condition: rows ≥ MinRows and the training
metric in range) → Register (ModelBuilder.register) or Stop (Fail). Evaluate's script is read from
s3://sdk-native-test/code/evaluate.py: stage it with `--upload`.
"""

from __future__ import annotations

from pathlib import Path

from sagemaker.core.processing import Processor, ScriptProcessor
from sagemaker.core.shapes import (
    MetricDefinition,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.transformer import Transformer
from sagemaker.core.workflow.conditions import (
    ConditionEquals,
    ConditionGreaterThanOrEqualTo,
    ConditionIn,
    ConditionNot,
    ConditionOr,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train.configs import Compute, InputData, StoppingCondition
from sagemaker.train.model_trainer import ModelTrainer

HERE = Path(__file__).resolve().parent
IMAGE = "rosetta-test/echo:latest"
ROLE = "arn:aws:iam::111122223333:role/EchoPipelineRole"
BUCKET = "sdk-native-test"
session = PipelineSession()

min_rows = ParameterInteger(name="MinRows", default_value=4)
prefix = ParameterString(name="Prefix", default_value="hi")


def out(step: str, name: str) -> ProcessingOutput:
    uri = Join(on="/", values=[f"s3://{BUCKET}/runs", ExecutionVariables.PIPELINE_EXECUTION_ID, step, name])
    return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
        s3_uri=uri, local_path=f"/opt/ml/processing/output/{name}", s3_upload_mode="EndOfJob"))


def inp(name: str, uri: object) -> ProcessingInput:
    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=uri, local_path=f"/opt/ml/processing/input/{name}", s3_data_type="S3Prefix", s3_input_mode="File"))


prepare = ProcessingStep(
    name="Prepare",
    step_args=ScriptProcessor(role=ROLE, image_uri=IMAGE, command=["python3"], instance_count=1,
                              instance_type="ml.m5.large", sagemaker_session=session).run(
        code=str(HERE / "prepare.py"), outputs=[out("Prepare", "train"), out("Prepare", "batch")],
        arguments=["--lines", "5"]),
    cache_config=CacheConfig(enable_caching=True, expire_after="PT1H"))

trainer = ModelTrainer(training_image=IMAGE, role=ROLE, sagemaker_session=session,
                       compute=Compute(instance_type="ml.m5.large", instance_count=1),
                       stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
                       hyperparameters={"prefix": prefix}).with_metric_definitions(
    [MetricDefinition(name="train:rows", regex=r"#metric rows=(\S+)")])  # a user-given regex
train = TrainingStep(name="Train", step_args=trainer.train(input_data_config=[InputData(
    channel_name="train", data_source=prepare.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri)]))

builder = ModelBuilder(image_uri=IMAGE, s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
                       sagemaker_session=session, role_arn=ROLE)
model = ModelStep(name="Model", step_args=builder.build())
transform = TransformStep(name="Transform", step_args=Transformer(
    model_name=model.properties.ModelName, instance_count=1, instance_type="ml.m5.large",
    output_path=Join(on="/", values=[f"s3://{BUCKET}/runs", ExecutionVariables.PIPELINE_EXECUTION_ID, "scored"]),
    assemble_with="Line", strategy="MultiRecord", sagemaker_session=session).transform(
    data=prepare.properties.ProcessingOutputConfig.Outputs["batch"].S3Output.S3Uri, content_type="text/csv",
    split_type="Line"))

evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
evaluate = ProcessingStep(
    name="Evaluate",
    step_args=Processor(role=ROLE, image_uri=IMAGE, instance_count=1, instance_type="ml.m5.large",
                        entrypoint=["python3", "/opt/ml/processing/input/code/evaluate.py"],
                        sagemaker_session=session).run(
        inputs=[inp("code", f"s3://{BUCKET}/code/evaluate.py"),
                inp("scored", transform.properties.TransformOutput.S3OutputPath)],
        outputs=[out("Evaluate", "evaluation")]),
    property_files=[evaluation])

register = ModelStep(name="Register", step_args=ModelBuilder(
    image_uri=IMAGE, s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts, sagemaker_session=session,
    role_arn=ROLE).register(model_package_group_name="sdk-native-echo", content_types=["text/csv"],
                            response_types=["text/csv"], approval_status="PendingManualApproval"))
stop = FailStep(name="Stop", error_message=Join(on=" ", values=[
    "only", JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="metrics.rows.value"),
    "rows scored, below MinRows", min_rows]))
gate = ConditionStep(
    name="Gate",
    conditions=[
        ConditionGreaterThanOrEqualTo(
            left=JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="metrics.rows.value"),
            right=min_rows),
        ConditionOr([ConditionIn(value=train.properties.FinalMetricDataList["train:rows"].Value, in_values=[5, 6]),
                     ConditionNot(ConditionEquals(left=prefix, right="hi"))]),
    ],
    if_steps=[register], else_steps=[stop])

pipeline = Pipeline(name="sdk-native-test", parameters=[min_rows, prefix],
                    steps=[prepare, train, model, transform, evaluate, gate], sagemaker_session=session)
