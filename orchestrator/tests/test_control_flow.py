"""Control flow, the registry, caching, retries and resume in real local runs (the echo image).

Condition kinds run without containers (their branches are Model steps), so both branches of
every kind cost about a second; the rest uses the echo image's cheap train/serve/processing.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from orch_helpers import HERE, rosetta, rosetta_inprocess

from rosetta_orchestrator import Pipeline
from rosetta_orchestrator import conditions as c
from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter, RunResult
from rosetta_orchestrator.local.store import LocalStore
from rosetta_orchestrator.sdk import sdk

pytestmark = pytest.mark.docker
ECHO = "rosetta-test/echo:latest"


def run(p: Pipeline, tmp: Path, reporter: QuietReporter | None = None, **kw: Any) -> RunResult:
    return execute(p, store=LocalStore(tmp / "s3"), workdir=tmp / "runs", reporter=reporter or QuietReporter(),
                   max_parallel=8, **kw)


def statuses(result: RunResult) -> dict[str, str]:
    return {n: s.status for n, s in result.steps.items()}


# -- every condition kind, both branches; nesting; steps after a branch that did not run ------------
#: kind → (condition builder, overrides that make it false)
KINDS: dict[str, tuple[Any, dict[str, str]]] = {
    "Eq": (lambda v: c.eq(v["S1"], "abc"), {"S1": "abd"}),
    "Gt": (lambda v: c.gt(v["N1"], 4), {"N1": "4"}),
    "Ge": (lambda v: c.ge(v["X1"], 0.5), {"X1": "0.49"}),
    "Lt": (lambda v: c.lt(v["N2"], 6), {"N2": "6"}),
    "Le": (lambda v: c.le(v["X2"], 0.5), {"X2": "0.51"}),
    "In": (lambda v: c.is_in(v["N3"], [1, 5, 9]), {"N3": "2"}),
    "Not": (lambda v: c.not_(c.eq(v["B1"], False)), {"B1": "false"}),
    "Or": (lambda v: c.or_(c.eq(v["S2"], "zzz"), c.lt(v["X3"], 1.0)), {"X3": "1.0"}),
    "Join": (lambda v: c.eq(v["p"].join(v["S2"], "-x"), "abc-x"), {"S2": "q"}),
}


def kinds_pipeline(tmp: Path) -> Pipeline:
    p = Pipeline("rosetta-conditions-test", bucket="rosetta-test")
    v: dict[str, Any] = {"p": p}
    for name, default in (("S1", "abc"), ("S2", "abc"), ("N1", 5), ("N2", 5), ("N3", 5), ("X1", 0.5),
                          ("X2", 0.5), ("X3", 0.5), ("B1", True)):
        v[name] = p.parameter(name, default)
    (tmp / "m").mkdir(parents=True, exist_ok=True)
    (tmp / "m" / "model.tar.gz").write_bytes(b"not read: Model steps start no container")
    data = p.upload(tmp / "m" / "model.tar.gz")
    for kind, (build, _) in KINDS.items():
        yes = p.model(f"{kind}Yes", model_data=data, image=ECHO)
        no = p.model(f"{kind}No", model_data=data, image=ECHO)
        extra = [c.eq(sdk().ExecutionVariables.PIPELINE_NAME, p.name)] if kind == "Eq" else []
        p.condition(f"{kind}Check", conditions=[build(v), *extra], if_steps=[yes], else_steps=[no])
    # nested: Outer(N1 > 4) → Inner(X1 >= 0.5) → DeepYes | DeepNo ; Outer else → Shallow
    deep_yes, deep_no = p.model("DeepYes", model_data=data, image=ECHO), p.model("DeepNo", model_data=data, image=ECHO)
    inner = p.condition("Inner", conditions=[c.ge(v["X1"], 0.5)], if_steps=[deep_yes], else_steps=[deep_no])
    shallow = p.model("Shallow", model_data=data, image=ECHO)
    p.condition("Outer", conditions=[c.gt(v["N1"], 4)], if_steps=[inner], else_steps=[shallow])
    # a top-level step that needs a branch step: it runs only when DeepNo does
    p.model("After", model_data=p.join("s3://rosetta-test/after/", deep_no.model_name), image=ECHO)
    return p


def test_every_condition_kind_both_branches_and_nesting(echo_image: str, tmp_path: Path) -> None:
    p = kinds_pipeline(tmp_path)
    true_run = run(p, tmp_path)
    assert true_run.status == "Succeeded", true_run.failure_reason
    false_overrides = {k: val for _, over in KINDS.values() for k, val in over.items()}
    false_run = run(p, tmp_path, parameters=false_overrides)
    assert false_run.status == "Succeeded", false_run.failure_reason
    for kind in KINDS:
        t, f = statuses(true_run), statuses(false_run)
        assert (t[f"{kind}Check"], t[f"{kind}Yes"], t[f"{kind}No"]) == ("Succeeded", "Succeeded", "NotRun"), kind
        assert (f[f"{kind}Check"], f[f"{kind}Yes"], f[f"{kind}No"]) == ("Succeeded", "NotRun", "Succeeded"), kind
        assert true_run.steps[f"{kind}No"].reason == f"not run (condition {kind}Check was true)"
        assert false_run.steps[f"{kind}Yes"].reason == f"not run (condition {kind}Check was false)"
    # nested: N1=4 (false) and X1=0.49 in the false run → Outer else; Inner and both Deep* not run
    t, f = statuses(true_run), statuses(false_run)
    assert [t[n] for n in ("Outer", "Inner", "DeepYes", "DeepNo", "Shallow", "After")] == [
        "Succeeded", "Succeeded", "Succeeded", "NotRun", "NotRun", "NotRun"]
    assert true_run.steps["After"].reason == "not run (DeepNo did not run)"
    assert [f[n] for n in ("Outer", "Inner", "DeepYes", "DeepNo", "Shallow", "After")] == [
        "Succeeded", "NotRun", "NotRun", "NotRun", "Succeeded", "NotRun"]
    assert false_run.steps["Inner"].reason == "not run (condition Outer was false)"
    assert false_run.steps["DeepYes"].reason == "not run (Inner did not run)"
    # the outer true, the inner false: DeepNo, then After (which needs it) run
    mixed = run(p, tmp_path, parameters={"X1": "0.1"})
    m = statuses(mixed)
    assert [m[n] for n in ("Outer", "Inner", "DeepYes", "DeepNo", "Shallow", "After")] == [
        "Succeeded", "Succeeded", "NotRun", "Succeeded", "NotRun", "Succeeded"]
    assert mixed.steps["GeCheck"].properties["Outcome"] is False
    saved = json.loads((tmp_path / "runs" / mixed.execution_id / "result.json").read_text())
    assert saved["steps"]["DeepYes"]["status"] == "NotRun" and saved["steps"]["Inner"]["branch"] == "Outer:if"


def test_mismatched_operand_types_fail_the_condition(echo_image: str, tmp_path: Path) -> None:
    p = Pipeline("rosetta-condition-types-test", bucket="rosetta-test")
    s = p.parameter("S", "0.9")
    p.condition("Check", conditions=[c.ge(s, 0.5)], else_steps=[p.fail("Stop", "unreachable")])
    result = run(p, tmp_path)
    assert result.status == "Failed" and result.steps["Check"].error_kind == "definition"
    assert result.steps["Check"].reason == ("GreaterThanOrEqualTo: cannot compare '0.9' (string) with 0.5 (number); "
                                            "compare values of the same type (numbers, strings or booleans)")
    assert result.steps["Stop"].status == "NotStarted"


# -- the three input forms, both branches, Fail message, registry, metrics ------------------------------
SDK_FILE = HERE / "pipelines" / "sdk_native.py"
EVALUATE = f"{HERE / 'pipelines' / 'evaluate.py'}=s3://sdk-native-test/code/evaluate.py"


@pytest.fixture(scope="module")
def forms(echo_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The SDK-native file run from .py (both branches), from its definition JSON and from the
    describe-pipeline-definition shape, all on one store (its registry collects the versions)."""
    tmp = tmp_path_factory.mktemp("forms")
    common = ["--store", str(tmp / "s3"), "--workdir", str(tmp / "runs"), "--upload", EVALUATE]
    out: dict[str, Any] = {"tmp": tmp, "common": common}
    res = rosetta("definition", str(SDK_FILE), guard=True)
    assert res.returncode == 0 and "NETGUARD_ATTEMPTS 0" in res.stderr, res.stderr[-3000:]
    definition = json.loads(res.stdout)
    (tmp / "definition.json").write_text(res.stdout)
    (tmp / "described.json").write_text(json.dumps({
        "PipelineDefinition": json.dumps(definition), "CreationTime": "2026-12-01T10:00:00Z"}))
    code = next(i["S3Input"]["S3Uri"] for i in definition["Steps"][0]["Arguments"]["ProcessingInputs"]
                if i["InputName"] == "code")
    out["definition"], out["prepare_code"] = definition, code
    runs = {"py": (str(SDK_FILE), []), "py-else": (str(SDK_FILE), ["--param", "MinRows=100"]),
            "json": (str(tmp / "definition.json"), ["--upload", f"{HERE / 'pipelines' / 'prepare.py'}={code}"]),
            "described-else": (str(tmp / "described.json"),
                               ["--param", "MinRows=11", "--upload", f"{HERE / 'pipelines' / 'prepare.py'}={code}",
                                "--name", "sdk-native-test"])}
    for key, (file, extra) in runs.items():
        res = rosetta_inprocess("run", file, *common, *extra)
        saved = sorted((tmp / "runs").glob("*/result.json"), key=lambda f: f.stat().st_mtime)[-1]
        out[key] = (res, json.loads(saved.read_text()))
    return out


def test_sdk_native_file_takes_both_branches(forms: dict[str, Any]) -> None:
    res, saved = forms["py"]
    assert res.returncode == 0, res.stderr[-3000:]
    assert saved["steps"]["Register"]["status"] == "Succeeded" and saved["steps"]["Stop"]["status"] == "NotRun"
    assert "condition Gate: 10 >= 4 and (5.0 in [5, 6] or not ('hi' == 'hi')) → True: ran the if branch (Register)" \
        in res.stderr
    assert "registered sdk-native-echo version 1 (PendingManualApproval)" in res.stderr
    res, saved = forms["py-else"]
    assert res.returncode == 1, res.stderr[-3000:]
    assert saved["status"] == "Failed" and saved["steps"]["Register"]["status"] == "NotRun"
    # the Fail step's evaluated ErrorMessage: summary, exit code, result.json
    assert saved["failure_reason"] == "only 10 rows scored, below MinRows 100"
    assert saved["steps"]["Stop"]["reason"] == "only 10 rows scored, below MinRows 100"
    assert "execution failed: only 10 rows scored, below MinRows 100" in res.stderr
    assert "Fail step Stop reached:" in res.stderr


def test_definition_json_and_describe_shape_run_the_same(forms: dict[str, Any]) -> None:
    res, saved = forms["json"]
    assert res.returncode == 0, res.stderr[-3000:]
    assert saved["pipeline"] == "definition" and saved["steps"]["Register"]["status"] == "Succeeded"
    res, saved = forms["described-else"]
    assert res.returncode == 1, res.stderr[-3000:]
    assert saved["pipeline"] == "sdk-native-test" and saved["failure_reason"] == "only 10 rows scored, below MinRows 11"


def test_metrics_through_metric_definitions(forms: dict[str, Any]) -> None:
    """The SDK file declares its own regex (``train:rows`` from the ``#metric rows=`` line): the
    metric is reported under the definition's name and feeds the condition."""
    _, saved = forms["py"]
    metrics = saved["steps"]["Train"]["properties"]["FinalMetricDataList"]
    assert [(m["MetricName"], m["Value"]) for m in metrics] == [("train:rows", 5.0)]
    assert "metrics Train: train:rows=5" in forms["py"][0].stderr


def test_registry_cli(forms: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """``rosetta models list|describe|approve|reject`` (in-process: the CLI's own parser)."""
    from sagemaker_rosetta.cli import main

    def models(*args: str) -> tuple[int, str, str]:
        code = main(["models", *args, "--store", str(forms["tmp"] / "s3")])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, _, err = models("list", "sdk-native-echo")
    assert code == 0, err
    lines = [line.split() for line in err.splitlines() if line.strip()[:1].isdigit()]
    assert [(row[0], row[1]) for row in lines] == [("1", "PendingManualApproval"), ("2", "PendingManualApproval")]
    arn = "arn:aws:sagemaker:us-east-1:000000000000:model-package/sdk-native-echo/1"
    assert models("approve", arn, "--description", "checked by hand")[0] == 0
    assert models("reject", "sdk-native-echo/2")[0] == 0
    described = json.loads(models("describe", arn)[1])
    assert described["ModelApprovalStatus"] == "Approved" and described["ApprovalDescription"] == "checked by hand"
    assert described["InferenceSpecification"]["Containers"][0]["Image"] == ECHO
    assert described["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
    assert json.loads(models("describe", "sdk-native-echo/2")[1])["ModelApprovalStatus"] == "Rejected"
    code, _, err = models("list")
    assert code == 0 and any(line.split()[:2] == ["sdk-native-echo", "2"] for line in err.splitlines()), err
    code, _, err = models("describe", "sdk-native-echo/7")
    assert code == 2 and err.strip() == "error: no version 7 in model package group sdk-native-echo (versions: 1, 2)"


def test_model_from_a_registered_package(forms: dict[str, Any], tmp_path: Path) -> None:
    """A later pipeline makes a Model from a registered version's ARN and transforms with it."""
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "x.csv").write_text("r1\nr2\n")
    p = Pipeline("rosetta-from-registry-test", bucket="rosetta-test")
    model = p.model("FromRegistry", package="arn:aws:sagemaker:us-east-1:000000000000:model-package/sdk-native-echo/1")
    p.transform("Score", model=model, data=p.upload(batch))
    result = execute(p, store=LocalStore(forms["tmp"] / "s3"), workdir=tmp_path / "runs", reporter=QuietReporter())
    assert result.status == "Succeeded", result.failure_reason
    assert result.steps["FromRegistry"].properties["PrimaryContainer"]["Image"] == ECHO
    out = LocalStore(forms["tmp"] / "s3").path(result.steps["Score"].properties["TransformOutput"]["S3OutputPath"])
    assert (out / "x.csv.out").read_text() == "hi:r1\nhi:r2\n"  # the registered model (prefix hi) served


# -- caching ------------------------------------------------------------------------------------------
def cache_pipeline() -> Pipeline:
    p = Pipeline("rosetta-cache-test", bucket="rosetta-test")
    train = p.training("Train", image=ECHO, inputs={"train": "s3://rosetta-test/cache-input/train.csv"},
                       metrics=["rows"], cache=True)
    model = p.model("Model", model_data=train.model_data, trained_by=train)
    scored = p.transform("Transform", model=model, data="s3://rosetta-test/cache-input/batch/", cache="P30D")
    p.processing("Check", image=ECHO, code=HERE / "pipelines" / "check.py", inputs={"predictions": scored.output},
                 outputs=["report"], cache="PT1H")
    return p


def test_cache_hit_miss_and_expiry(echo_image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "batch").mkdir(parents=True)
    (data / "train.csv").write_text("1\n2\n")
    (data / "batch" / "b.csv").write_text("x\ny\n")
    uploads = {"s3://rosetta-test/cache-input/train.csv": data / "train.csv",
               "s3://rosetta-test/cache-input/batch": data / "batch"}
    p = cache_pipeline()
    first = run(p, tmp_path, uploads=uploads)
    assert first.status == "Succeeded" and not any(s.cached_from for s in first.steps.values())
    second = run(p, tmp_path, uploads=uploads)
    assert {n: s.cached_from for n, s in second.steps.items()} == {
        "Train": first.execution_id, "Model": "", "Transform": first.execution_id, "Check": first.execution_id}
    assert second.steps["Transform"].properties == first.steps["Transform"].properties  # the same outputs
    # new content under the same URI: Train runs again, and so does what depends on its model
    (data / "train.csv").write_text("1\n2\n3\n")
    third = run(p, tmp_path, uploads=uploads)
    assert {n: bool(s.cached_from) for n, s in third.steps.items()} == {
        "Train": False, "Model": False, "Transform": False, "Check": False}
    assert third.steps["Train"].properties["FinalMetricDataList"][0]["Value"] == 3.0
    # an entry older than ExpireAfter (Check: PT1H) is not reused
    entries = list((tmp_path / "s3" / "rosetta-local" / "cache" / "rosetta-cache-test" / "Check").glob("*.json"))
    for entry in entries:
        doc = json.loads(entry.read_text())
        doc["created"] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
        entry.write_text(json.dumps(doc))
    reporter = QuietReporter()
    fourth = run(p, tmp_path, reporter, uploads=uploads)
    assert {n: s.cached_from for n, s in fourth.steps.items()} == {
        "Train": third.execution_id, "Model": "", "Transform": third.execution_id, "Check": ""}
    assert any(line.startswith("[rosetta] cache expired (cached ") for line in reporter.lines["Check"])
    fifth = run(p, tmp_path, uploads=uploads, use_cache=False)  # --no-cache
    assert fifth.status == "Succeeded" and not any(s.cached_from for s in fifth.steps.values())


# -- resume after a failed step -----------------------------------------------------------------------
def test_resume_reruns_only_failed_and_not_started(echo_image: str, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("1\nFAIL\n")
    (tmp_path / "good.csv").write_text("1\n2\n")
    file = str(HERE / "pipelines" / "resume.py")
    common = ["--store", str(tmp_path / "s3"), "--workdir", str(tmp_path / "runs")]
    res = rosetta_inprocess("run", file, *common, "--upload",
                            f"{tmp_path / 'bad.csv'}=s3://rosetta-test/resume/train.csv")
    assert res.returncode == 1, res.stderr[-3000:]
    first = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert {n: s["status"] for n, s in first["steps"].items()} == {
        "Prepare": "Succeeded", "Train": "Failed", "Model": "NotStarted", "Transform": "NotStarted"}
    assert first["steps"]["Train"]["reason"] == "DataError: train.csv has a FAIL row"
    execution = first["execution_id"]
    with pytest.raises(ValueError, match="--resume runs with the parameters of the execution it resumes"):
        from rosetta_orchestrator.loader import load_source

        execute(load_source(file), store=LocalStore(tmp_path / "s3"), workdir=tmp_path / "runs",
                parameters={"X": "1"}, resume=execution)
    res = rosetta_inprocess("run", file, *common, "--resume", execution,
                            "--upload", f"{tmp_path / 'good.csv'}=s3://rosetta-test/resume/train.csv")
    assert res.returncode == 0, res.stderr[-3000:]
    resumed = json.loads((tmp_path / "runs" / execution / "result.json").read_text())
    assert resumed["execution_id"] == execution  # RetryPipelineExecution keeps the execution
    assert {n: s["status"] for n, s in resumed["steps"].items()} == dict.fromkeys(
        ["Prepare", "Train", "Model", "Transform"], "Succeeded")
    assert resumed["steps"]["Prepare"]["reused_from"] == execution and not resumed["steps"]["Train"]["reused_from"]
    assert "[Prepare]" not in res.stderr and "[Train]" in res.stderr  # Prepare did not run again
    assert resumed["steps"]["Prepare"]["properties"] == first["steps"]["Prepare"]["properties"]


# -- retries ------------------------------------------------------------------------------------------
class KillFirstAttempt(QuietReporter):
    """Kills the Flaky step's container from outside once it has started (like a lost instance)."""

    def __init__(self) -> None:
        super().__init__()
        self.killed = threading.Event()

    def log(self, step: str, line: str) -> None:
        super().log(step, line)
        if step == "Flaky" and line == "started" and not self.killed.is_set():
            from sagemaker_rosetta.containers import Container
            from sagemaker_rosetta.dockerapi import client

            name = next(ct.name for ct in client().containers.list(filters={"name": "rosetta-Flaky-"}))
            Container("", name=name).kill("KILL")
            self.killed.set()


def test_retry_policy_retries_internal_faults_only(echo_image: str, tmp_path: Path) -> None:
    s = sdk()
    policy = s.SageMakerJobStepRetryPolicy(exception_types=[s.SageMakerJobExceptionTypeEnum.INTERNAL_ERROR],
                                           interval_seconds=0, max_attempts=2)
    every = s.StepRetryPolicy(exception_types=[s.StepExceptionTypeEnum.SERVICE_FAULT,
                                               s.StepExceptionTypeEnum.THROTTLING], interval_seconds=0, max_attempts=3)
    p = Pipeline("rosetta-retry-test", bucket="rosetta-test")
    p.processing("Flaky", image=ECHO, entrypoint=["sh", "-c", "echo started; sleep 2; echo done"], retry=[policy])
    p.processing("Broken", image=ECHO, entrypoint=["sh", "-c", "echo broken; exit 3"], retry=[policy, every])
    reporter = KillFirstAttempt()
    result = run(p, tmp_path, reporter)
    assert reporter.killed.is_set()
    flaky, broken = result.steps["Flaky"], result.steps["Broken"]
    assert (flaky.status, flaky.attempts) == ("Succeeded", 2)
    assert any(line.startswith("[rosetta] attempt 1 failed: the container was killed from outside the job")
               for line in reporter.lines["Flaky"])
    assert (broken.status, broken.attempts, broken.exit_code) == ("Failed", 1, 3)  # its own failure: no retry
