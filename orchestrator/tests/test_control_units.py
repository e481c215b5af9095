"""Pure parts of control flow (no Docker): condition evaluation, the plan's checks, the registry,
cache durations, retry policies and record counting."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from rosetta_orchestrator.local import batching, cache, records
from rosetta_orchestrator.local.conditions import ConditionError, evaluate, holds
from rosetta_orchestrator.local.context import StepFailed
from rosetta_orchestrator.local.plan import DefinitionError, build_plan
from rosetta_orchestrator.local.registry import Registry, RegistryError
from rosetta_orchestrator.local.retry import delay, with_retries
from rosetta_orchestrator.local.store import LocalStore


def cmp(kind: str, left: Any, right: Any) -> dict[str, Any]:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


# -- conditions: SageMaker's comparison rules ------------------------------------------------------
@pytest.mark.parametrize(("kind", "left", "right", "expected"), [
    ("Equals", 1, 1.0, True),             # numbers compare numerically, integer or float
    ("Equals", 0.1, 0.2, False),
    ("Equals", "a", "a", True),
    ("Equals", "a", "A", False),          # strings exactly
    ("Equals", True, True, True),
    ("Equals", True, False, False),
    ("NotEquals", "x", "y", True),
    ("GreaterThan", 2, 1.5, True),
    ("GreaterThan", 1, 1, False),
    ("GreaterThanOrEqualTo", 1, 1.0, True),
    ("GreaterThanOrEqualTo", 0.89, 0.9, False),
    ("LessThan", "abc", "abd", True),    # strings lexicographically
    ("LessThan", 3, 2, False),
    ("LessThanOrEqualTo", 2, 2, True),
    ("LessThanOrEqualTo", 2.5, 2, False),
])
def test_comparisons(kind: str, left: Any, right: Any, expected: bool) -> None:
    assert holds(cmp(kind, left, right)) is expected


@pytest.mark.parametrize(("left", "right"), [("1", 1), (True, 1), (None, 1), ([1], 1), ("0.9", 0.9)])
def test_mismatched_types_fail_the_step(left: Any, right: Any) -> None:
    with pytest.raises(ConditionError, match="cannot compare"):
        holds(cmp("GreaterThanOrEqualTo", left, right))
    with pytest.raises(ConditionError, match="cannot compare"):
        holds(cmp("Equals", left, right))


def test_booleans_only_equal() -> None:
    with pytest.raises(ConditionError, match="booleans can only be tested with Equals"):
        holds(cmp("GreaterThan", True, False))


def test_in_not_or_and() -> None:
    assert holds({"Type": "In", "QueryValue": 2.0, "Values": [1, 2, 3]})
    assert holds({"Type": "In", "QueryValue": "b", "Values": [1, "a", "b"]})  # other types never match
    assert not holds({"Type": "In", "QueryValue": "2", "Values": [1, 2]})
    assert holds({"Type": "Not", "Condition": cmp("Equals", 1, 2)})
    assert not holds({"Type": "Not", "Condition": cmp("Equals", 1, 1)})
    assert holds({"Type": "Or", "Conditions": [cmp("Equals", 1, 2), cmp("LessThan", 1, 2)]})
    assert not holds({"Type": "Or", "Conditions": [cmp("Equals", 1, 2), cmp("LessThan", 3, 2)]})
    assert evaluate([cmp("Equals", 1, 1), cmp("LessThan", 1, 2)])  # a step's list is a conjunction
    assert not evaluate([cmp("Equals", 1, 1), cmp("LessThan", 3, 2)])
    with pytest.raises(ConditionError, match="Values must be a list"):
        holds({"Type": "In", "QueryValue": 1, "Values": 1})
    with pytest.raises(ConditionError, match="unknown condition type 'And'"):
        holds({"Type": "And", "Conditions": []})


# -- the plan: errors before any container --------------------------------------------------------
def step(name: str, kind: str = "Processing", **kw: Any) -> dict[str, Any]:
    return {"Name": name, "Type": kind, "Arguments": kw.pop("Arguments", {}), **kw}


def test_branches_are_flattened_with_gates() -> None:
    inner = step("Inner", "Condition", Arguments={"Conditions": [], "IfSteps": [step("Deep")],
                                                  "ElseSteps": []})
    plan = build_plan({"Steps": [step("A"), step("Gate", "Condition", Arguments={
        "Conditions": [cmp("Equals", {"Get": "Steps.A.ProcessingJobName"}, "x")],
        "IfSteps": [step("Yes"), inner], "ElseSteps": [step("No", "Fail")]})]})
    gates = {n: s.gate for n, s in plan.steps.items()}
    assert gates == {"A": None, "Gate": None, "Yes": ("Gate", True), "Inner": ("Gate", True),
                     "No": ("Gate", False), "Deep": ("Inner", True)}
    assert plan.steps["Gate"].deps == {"A"}  # from its conditions, not from its branches
    assert plan.order().index("Deep") > plan.order().index("Inner") > plan.order().index("Gate")


@pytest.mark.parametrize(("definition", "message"), [
    ({"Steps": [step("Notify", "Lambda"), step("Check", "QualityCheck"), step("Ok")]},
     "step type(s) the local runner does not run: Notify (Lambda), Check (QualityCheck) (it runs Training, "
     "Processing, Model, Transform, Tuning"),
    ({"Steps": [step("A"), step("A")]}, "step A: the name is used twice"),
    ({"Steps": [step("A", Arguments={"x": {"Get": "Steps.Nope.ProcessingJobName"}})]},
     "step A: Get Steps.Nope.ProcessingJobName names an unknown step (steps: A)"),
    ({"Steps": [step("T", "Training"), step("B", Arguments={"x": {"Get": "Steps.T.ModelArtifacts.S3ModelArtifact"}})]},
     "step B: Get Steps.T.ModelArtifacts.S3ModelArtifact: ModelArtifacts has no property 'S3ModelArtifact' "
     "(did you mean S3ModelArtifacts?)"),
    ({"Steps": [step("E"), step("B", Arguments={"x": {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.E.PropertyFiles.Eval"}, "Path": "a"}}})]},
     "step B: Get Steps.E.PropertyFiles.Eval: step E declares no property file 'Eval' (declared: none)"),
    ({"Steps": [step("A", DependsOn=["B"]), step("B", DependsOn=["A"])]}, "dependency cycle among steps A, B"),
    ({"Steps": [step("A", DependsOn=["Zed"])]}, "step A: DependsOn names an unknown step 'Zed'"),
    ({"Steps": [step("A", DependsOn=[{"Step": "B", "Trigger": "Failed"}]), step("B")]},
     "step A: DependsOn B with Trigger Failed is not supported locally"),
    ({"Version": "2020-12-01"}, "malformed definition: expected a JSON object with a \"Steps\" list"),
    ({"Steps": [{"Type": "Processing"}]}, "malformed definition: step #1 needs a \"Name\" and a \"Type\""),
])
def test_plan_errors_name_the_step(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as err:
        build_plan(definition)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


# -- registry ------------------------------------------------------------------------------------
def test_registry_versions_and_approval(tmp_path: Path) -> None:
    reg = Registry(LocalStore(tmp_path))
    spec = {"Containers": [{"Image": "img:1", "ModelDataUrl": "s3://bkt/m.tar.gz"}]}
    src = {"pipeline": "p", "execution_id": "e1", "step": "Register"}
    one = reg.register({"ModelPackageGroupName": "grp", "InferenceSpecification": spec}, source=src)
    two = reg.register({"ModelPackageGroupName": "grp", "InferenceSpecification": spec,
                        "ModelApprovalStatus": "Approved"}, source=src)
    other = reg.register({"ModelPackageGroupName": "other", "InferenceSpecification": spec}, source=src)
    assert (one["ModelPackageVersion"], two["ModelPackageVersion"], other["ModelPackageVersion"]) == (1, 2, 1)
    assert one["ModelApprovalStatus"] == "PendingManualApproval" and two["ModelApprovalStatus"] == "Approved"
    assert one["ModelPackageArn"] == "arn:aws:sagemaker:us-east-1:000000000000:model-package/grp/1"
    assert [g["ModelPackageGroupName"] for g in reg.groups()] == ["grp", "other"]
    assert reg.set_status(one["ModelPackageArn"], "Rejected", "too slow")["ApprovalDescription"] == "too slow"
    assert reg.describe("grp/1")["ModelApprovalStatus"] == "Rejected"
    assert reg.container("grp/2") == spec["Containers"][0]
    with pytest.raises(RegistryError, match=r"no version 9 in model package group grp \(versions: 1, 2\)"):
        reg.describe("grp/9")
    with pytest.raises(RegistryError, match="no model package group 'nope'"):
        reg.describe("nope/1")
    with pytest.raises(RegistryError, match="not one of Approved, Rejected, PendingManualApproval"):
        reg.register({"ModelPackageGroupName": "grp", "ModelApprovalStatus": "Maybe"}, source=src)
    # a third version claims the next number even if another writer took 3 in between
    (tmp_path / "rosetta-local/model-registry/grp/versions/3.json").write_text(json.dumps(
        {**two, "ModelPackageVersion": 3}))
    assert reg.register({"ModelPackageGroupName": "grp", "InferenceSpecification": spec},
                        source=src)["ModelPackageVersion"] == 4


# -- cache expiry, retries -------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("PT1H", dt.timedelta(hours=1)), ("P30D", dt.timedelta(days=30)), ("30d", dt.timedelta(days=30)),
    ("T16m", dt.timedelta(minutes=16)), ("P4DT12H", dt.timedelta(days=4, hours=12)),
    ("p1w", dt.timedelta(days=7)), ("PT90S", dt.timedelta(seconds=90))])
def test_expire_after_durations(text: str, expected: dt.timedelta) -> None:
    assert cache.parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "P", "1 hour", "PT", "P1H"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(cache.CacheConfigError, match="not an ISO-8601 duration"):
        cache.parse_duration(bad)


def test_retry_only_internal_faults() -> None:
    policy = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 0, "BackoffRate": 2.0,
              "MaxAttempts": 2}
    seen: list[int] = []
    waits: list[float] = []

    def internal() -> dict[str, Any]:
        raise StepFailed("S", "engine lost the container", fault="internal")

    with pytest.raises(StepFailed, match=r"\(after 3 attempts\)"):
        with_retries(internal, [policy], log=lambda _: None, attempts=seen.append,
                     wait=lambda s: waits.append(s) is None)
    assert seen == [1, 2, 3] and waits == [0.0, 0.0]  # MaxAttempts counts retries after the first
    seen.clear()

    def own() -> dict[str, Any]:
        raise StepFailed("S", "ValueError in train()")

    every = {**policy, "ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.JOB_INTERNAL_ERROR",
                                         "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"]}
    with pytest.raises(StepFailed, match="ValueError in train"):
        with_retries(own, [every], log=lambda _: None, attempts=seen.append)
    assert seen == [1]  # the job's own failure is never retried
    assert [delay({"IntervalSeconds": 3, "BackoffRate": 2}, n) for n in range(3)] == [3, 6, 12]


# -- record counting (issue 13) --------------------------------------------------------------------
def test_header_rule_and_counts() -> None:
    assert records.header_expected("text/csv; header=present", {})
    assert records.header_expected("text/csv", {"ROSETTA_CSV_HEADER": "true"})
    assert not records.header_expected("text/csv; header=absent", {"ROSETTA_CSV_HEADER": "true"})
    assert not records.header_expected("text/csv", {})
    assert not records.header_expected("application/jsonlines", {"ROSETTA_CSV_HEADER": "true"})
    assert records.is_header(b"a,b\n", None) and not records.is_header(b"1, 2.5e3\n", None)
    assert records.is_header(b'"1","2"\n', ["1", "2"])  # D1 (a): equals the feature names
    assert not records.is_header(b'" 1 ",2\n', None)  # quotes and spaces removed: numbers
    assert records.output_records(b"a\n\nb\n", "text/csv; charset=utf-8") == 2
    assert records.output_records(b'{"x":1}\n{"x":2}\n', "application/jsonlines") == 2
    assert records.output_records(b'{"predictions": [1, 2, 3]}', "application/json") == 3
    assert records.output_records(b"[[1], [2]]", "application/json") == 2
    assert records.output_records(b'{"label": 1}', "application/json") is None
    assert records.output_records(b"\x00", "application/x-protobuf") is None


def test_plan_byte_ranges() -> None:
    recs = batching.split_records(b"h\n" + b"12345\n" * 5, "Line")
    reqs = batching.plan(recs, "MultiRecord", 14)
    assert [(r.start, r.end, r.body.count(b"\n")) for r in reqs] == [(0, 14, 3), (14, 26, 2), (26, 32, 1)]
    assert b"".join(r.body for r in reqs) == b"h\n" + b"12345\n" * 5
    with pytest.raises(batching.BatchError, match="exceeds MaxPayloadInMB=1"):
        batching.plan([b"x" * (batching.MIB + 1)], "MultiRecord", batching.MIB, limit_name="MaxPayloadInMB=1")


def test_registry_and_cache_entries_on_an_s3_endpoint() -> None:
    """The same registry through an S3 API (a moto server on 127.0.0.1 standing in for MinIO/S3):
    versions are claimed with conditional writes (If-None-Match)."""
    import socket

    from moto.server import ThreadedMotoServer

    from rosetta_orchestrator.local.store import S3Store

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        store = S3Store(f"http://127.0.0.1:{port}")
        reg = Registry(store)
        src = {"pipeline": "p", "execution_id": "e", "step": "R"}
        versions = [reg.register({"ModelPackageGroupName": "g"}, source=src)["ModelPackageVersion"] for _ in range(2)]
        assert versions == [1, 2] and [v["ModelPackageVersion"] for v in reg.versions("g")] == [1, 2]
        with pytest.raises(FileExistsError):
            store.write_text("s3://rosetta-local/model-registry/g/versions/1.json", "{}", exclusive=True)
        assert reg.set_status("g/2", "Approved")["ModelApprovalStatus"] == "Approved"
        cache.save(store, "p", "Train", "k1", "exec-1", {"ModelArtifacts": {"S3ModelArtifacts": "s3://bkt/m.tar.gz"}})
        setting = cache.CacheSetting(True, None)
        assert cache.lookup(store, "p", "Train", "k1", setting, "Training")[1] == "outputs gone (s3://bkt/m.tar.gz)"
        store.write_text("s3://bkt/m.tar.gz", "model")
        entry, why = cache.lookup(store, "p", "Train", "k1", setting, "Training")
        assert why == "hit" and entry is not None and entry["execution_id"] == "exec-1"
        assert cache.lookup(store, "p", "Train", "other", setting, "Training") == (None, "miss")
    finally:
        server.stop()
