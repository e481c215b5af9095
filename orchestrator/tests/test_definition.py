"""The iris pipeline compiles to a SageMaker definition offline: structure, images, parameters, refs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from orch_helpers import ROOT, apt_install, rosetta

IRIS = ROOT / "examples" / "iris" / "pipeline.py"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    res = rosetta("definition", str(IRIS), guard=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "NETGUARD_ATTEMPTS 0" in res.stderr, res.stderr[-5000:]
    return dict(json.loads(res.stdout))


def steps(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in d["Steps"]}


def _trainer(s: dict[str, dict[str, Any]], rt: str) -> dict[str, Any]:
    """The training request of a runtime's trainer (R's is a tuning job's TrainingJobDefinition)."""
    if rt == "R":
        return dict(s["TuneR"]["Arguments"]["TrainingJobDefinition"])
    return dict(s[f"Train{rt}"]["Arguments"])


def test_zero_network_and_valid_shape(definition: dict[str, Any]) -> None:
    assert definition["Version"] == "2020-12-01"
    assert set(steps(definition)) == {
        "Split", "TrainPython", "TuneR", "TrainJulia", "ModelPython", "ModelR", "ModelJulia",
        "TransformPython", "TransformR", "TransformJulia", "Evaluate", "AccuracyGate"}


def test_gate_registers_the_best_model_or_fails(definition: dict[str, Any]) -> None:
    """Evaluate → AccuracyGate (best accuracy ≥ MinAccuracy) → RegisterBest, else AccuracyTooLow;
    the branch steps live inside the condition, as the SDK emits them."""
    gate = steps(definition)["AccuracyGate"]["Arguments"]
    evaluation = {"Get": "Steps.Evaluate.PropertyFiles.evaluation"}
    best = {"Std:JsonGet": {"PropertyFile": evaluation, "Path": "best.accuracy"}}
    assert gate["Conditions"] == [{"Type": "GreaterThanOrEqualTo", "LeftValue": best,
                                   "RightValue": {"Get": "Parameters.MinAccuracy"}}]
    (register,), (fail,) = gate["IfSteps"], gate["ElseSteps"]
    assert (register["Name"], register["Type"], fail["Name"], fail["Type"]) == (
        "RegisterBest", "RegisterModel", "AccuracyTooLow", "Fail")
    args = register["Arguments"]
    assert args["ModelPackageGroupName"] == "rosetta-iris" and args["ModelApprovalStatus"] == "PendingManualApproval"
    container = args["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"]["Std:JsonGet"]["Path"] == "best.model_data"
    assert container["Image"]["Std:JsonGet"]["Path"] == "best.image"
    assert args["ModelMetrics"]["ModelQuality"]["Statistics"]["ContentType"] == "application/json"
    assert best in fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert steps(definition)["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert params["MinAccuracy"] == {"Name": "MinAccuracy", "Type": "Float", "DefaultValue": 0.9}


def test_metric_definitions_and_caching(definition: dict[str, Any]) -> None:
    """Each trainer declares the metric line its runtime prints (T-20); container steps cache."""
    s = steps(definition)
    for rt, name in (("Python", "train_accuracy"), ("R", "train:oob_error"), ("Julia", "train_accuracy")):
        spec = _trainer(s, rt)["AlgorithmSpecification"]
        assert spec["MetricDefinitions"] == [{"Name": name, "Regex": f"#metric {name}=(\\S+)"}]
    for name in ("Split", "TuneR", "TransformJulia", "Evaluate"):
        assert s[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    assert "CacheConfig" not in s["ModelR"]


def test_step_types(definition: dict[str, Any]) -> None:
    kinds = {n: s["Type"] for n, s in steps(definition).items()}
    assert kinds["Split"] == kinds["Evaluate"] == "Processing"
    for rt in ("Python", "Julia"):
        assert (kinds[f"Train{rt}"], kinds[f"Model{rt}"], kinds[f"Transform{rt}"]) == (
            "Training", "Model", "Transform")
    assert (kinds["TuneR"], kinds["ModelR"], kinds["TransformR"]) == ("Tuning", "Model", "Transform")


def test_images_per_step(definition: dict[str, Any]) -> None:
    s = steps(definition)
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert s["Split"]["Arguments"]["AppSpecification"]["ImageUri"] == "rosetta/python:latest"
    assert s["Evaluate"]["Arguments"]["AppSpecification"]["ImageUri"] == "rosetta/r:latest"
    for rt, param, image in (("Python", "PythonImage", "rosetta-example/iris-python:latest"),
                             ("R", "RImage", "rosetta-example/iris-r:latest"),
                             ("Julia", "JuliaImage", "rosetta-example/iris-julia:latest")):
        train_image = _trainer(s, rt)["AlgorithmSpecification"]["TrainingImage"]
        assert train_image == {"Get": f"Parameters.{param}"}
        assert params[param]["DefaultValue"] == image
        assert s[f"Model{rt}"]["Arguments"]["PrimaryContainer"]["Image"] == {"Get": f"Parameters.{param}"}
    # the evaluation runs in another language than at least one trainer
    assert "rosetta/r" in s["Evaluate"]["Arguments"]["AppSpecification"]["ImageUri"]
    entry = s["Evaluate"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    assert entry[0] == "Rscript" and entry[1].endswith("/evaluate.R")


def test_parameters_and_hyperparameters(definition: dict[str, Any]) -> None:
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert params["PythonNEstimators"]["Type"] == "Integer"
    assert params["JuliaLearningRate"]["Type"] == "Float"
    assert params["Target"] == {"Name": "Target", "Type": "String", "DefaultValue": "species"}
    s = steps(definition)
    hp = s["TrainPython"]["Arguments"]["HyperParameters"]
    # non-string parameters reach HyperParameters as strings (T-02) through Std:Join
    assert hp["n_estimators"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.PythonNEstimators"}]}}
    assert hp["target"] == {"Get": "Parameters.Target"}
    assert set(s["TuneR"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]) == {"target"}
    tuning = s["TuneR"]["Arguments"]["HyperParameterTuningJobConfig"]
    (ntree,) = tuning["ParameterRanges"]["IntegerParameterRanges"]
    assert ntree["Name"] == "ntree" and ntree["MinValue"] == "25"
    assert ntree["MaxValue"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.RNTree"}]}}
    assert tuning["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "train:oob_error"}
    assert tuning["ResourceLimits"] == {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 3}
    assert set(s["TrainJulia"]["Arguments"]["HyperParameters"]) == {"epochs", "lr", "target"}


def test_references_between_steps(definition: dict[str, Any]) -> None:
    s = steps(definition)
    channel = s["TuneR"]["Arguments"]["TrainingJobDefinition"]["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Split.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert s["ModelJulia"]["Arguments"]["PrimaryContainer"]["ModelDataUrl"] == {
        "Get": "Steps.TrainJulia.ModelArtifacts.S3ModelArtifacts"}
    # the tuned R model: the SDK's get_top_model_s3_uri(0, ...) of the tuning step
    assert s["ModelR"]["Arguments"]["PrimaryContainer"]["ModelDataUrl"] == {"Std:Join": {"On": "/", "Values": [
        "s3:/", "rosetta-iris", "rosetta-iris/tuning/TuneR",
        {"Get": "Steps.TuneR.TrainingJobSummaries[0].TrainingJobName"}, "output/model.tar.gz"]}}
    tr = s["TransformPython"]["Arguments"]
    assert tr["ModelName"] == {"Get": "Steps.ModelPython.ModelName"}
    assert tr["TransformInput"]["SplitType"] == "Line"
    assert tr["TransformInput"]["ContentType"] == "text/csv"
    assert tr["BatchStrategy"] == "MultiRecord"
    assert tr["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Split.ProcessingOutputConfig.Outputs['features'].S3Output.S3Uri"}
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in s["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert inputs["python"] == {"Get": "Steps.TransformPython.TransformOutput.S3OutputPath"}
    assert inputs["julia"] == {"Get": "Steps.TransformJulia.TransformOutput.S3OutputPath"}
    # outputs are per execution: Std:Join with the execution id
    out = s["Split"]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert {"Get": "Execution.PipelineExecutionId"} in out["Std:Join"]["Values"]


def test_graph_names_each_runtime(tmp_path: Path) -> None:
    if not shutil.which("dot"):
        apt_install("graphviz")
    res = rosetta("graph", str(IRIS), "-o", str(tmp_path / "iris.svg"), guard=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("flowchart LR")
    assert 'TrainJulia["TrainJulia<br/>Training · julia' in res.stdout
    assert 'Evaluate["Evaluate<br/>Processing · r' in res.stdout
    assert "Split --> TuneR" in res.stdout and "TransformJulia --> Evaluate" in res.stdout
    assert "AccuracyGate -->|if| RegisterBest" in res.stdout and "AccuracyGate -->|else| AccuracyTooLow" in res.stdout
    assert "Evaluate --> AccuracyGate" in res.stdout
    svg = (tmp_path / "iris.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "TrainJulia" in svg and "Training · julia" in svg and "rosetta/r:latest" in svg


def test_rosetta_cli_registers_pipeline_commands() -> None:
    from rosetta_orchestrator import cli
    from sagemaker_rosetta.cli import build_parser

    parser = build_parser()
    for action, func in (("definition", cli.cmd_definition), ("upsert", cli.cmd_upsert),
                         ("start", cli.cmd_start), ("run", cli.cmd_run), ("graph", cli.cmd_graph)):
        args = parser.parse_args(["pipeline", action, str(IRIS)])
        assert args.func.__wrapped__ is func  # wrapped: errors become one `error:` line, exit 2
    for action in ("list", "describe", "approve", "reject"):
        args = parser.parse_args(["models", action, *(["rosetta-iris/1"] if action != "list" else [])])
        assert args.models_command == action and callable(args.func)


def test_sdk_native_graph_shows_branches(capsys: pytest.CaptureFixture[str]) -> None:
    from orch_helpers import HERE

    from rosetta_orchestrator.cli import main

    assert main(["pipeline", "graph", str(HERE / "pipelines" / "sdk_native.py")]) == 0
    out = capsys.readouterr().out
    assert "Gate -->|if| Register" in out and "Gate -->|else| Stop" in out and "Evaluate --> Gate" in out
    assert 'Register["Register<br/>RegisterModel' in out and 'Stop["Stop<br/>Fail' in out
