"""The definition interpreter's pure parts: expressions, dependencies, parameters, batching."""

from __future__ import annotations

from typing import Any

import pytest

from rosetta_orchestrator.local import batching
from rosetta_orchestrator.local.expressions import ExpressionError, Resolver, path_tokens, step_refs
from rosetta_orchestrator.local.runner import coerce_parameters, dependencies

PROPS = {"Split": {"ProcessingOutputConfig": {"Outputs": [
    {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
    {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/test"}}]},
    "PropertyFiles": {"Metrics": {"S3Uri": "s3://b/eval/metrics.json"}}}}


def resolver() -> Resolver:
    files = {"s3://b/eval/metrics.json": '{"scores": {"acc": [0.5, 0.97]}}'}
    return Resolver({"N": 3, "Flag": True}, {"PipelineExecutionId": "exec-1"}, PROPS, files.__getitem__)


def test_path_tokens() -> None:
    assert path_tokens("Steps.Split.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == [
        "Steps", "Split", "ProcessingOutputConfig", "Outputs", "train", "S3Output", "S3Uri"]
    assert path_tokens('a.b[0]["x y"]') == ["a", "b", 0, "x y"]


def test_get_join_jsonget() -> None:
    r = resolver()
    assert r.resolve({"Get": "Steps.Split.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}) == "s3://b/test"
    assert r.resolve({"Get": "Steps.Split.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"}) == "s3://b/train"
    joined = {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"},
                                                   {"Get": "Parameters.N"}, {"Get": "Parameters.Flag"}]}}
    assert r.resolve({"X": [joined]}) == {"X": ["s3://b/exec-1/3/true"]}
    got = r.resolve({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Split.PropertyFiles.Metrics"},
                                     "Path": "scores.acc[1]"}})
    assert got == 0.97


def test_unresolvable_references_fail_clearly() -> None:
    with pytest.raises(ExpressionError, match="has not run"):
        resolver().resolve({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"})
    with pytest.raises(ExpressionError, match="no such parameter"):
        resolver().resolve({"Get": "Parameters.Missing"})
    with pytest.raises(ExpressionError, match="no element named 'nope'"):
        resolver().resolve({"Get": "Steps.Split.ProcessingOutputConfig.Outputs['nope'].S3Output.S3Uri"})


def test_dependencies_from_refs_and_depends_on() -> None:
    d = {"Steps": [
        {"Name": "A", "Type": "Processing", "Arguments": {}},
        {"Name": "B", "Type": "Training", "Arguments": {"x": {"Get": "Steps.A.ProcessingJobName"}}},
        {"Name": "C", "Type": "Processing", "DependsOn": ["A"], "Arguments": {
            "y": {"Std:Join": {"On": "", "Values": [{"Get": "Steps.B.ModelArtifacts.S3ModelArtifacts"}]}}}}]}
    assert dependencies(d) == {"A": set(), "B": {"A"}, "C": {"A", "B"}}
    assert step_refs(d["Steps"][2]["Arguments"]) == {"B"}
    d["Steps"][0]["DependsOn"] = ["C"]
    with pytest.raises(ValueError, match="cycle"):
        dependencies(d)


def test_parameters_typed_from_strings() -> None:
    declared: list[dict[str, Any]] = [{"Name": "N", "Type": "Integer", "DefaultValue": 1},
                {"Name": "LR", "Type": "Float", "DefaultValue": 0.1},
                {"Name": "S", "Type": "String", "DefaultValue": "x"}]
    assert coerce_parameters(declared, {"N": "5", "LR": "0.5"}) == {"N": 5, "LR": 0.5, "S": "x"}
    with pytest.raises(ValueError, match="not a valid Integer"):
        coerce_parameters(declared, {"N": "five"})
    with pytest.raises(ValueError, match="unknown parameter"):
        coerce_parameters(declared, {"Nope": "1"})


def test_split_records() -> None:
    assert batching.split_records(b"a\nb\r\nc", "Line") == [b"a\n", b"b\r\n", b"c"]
    assert batching.split_records(b"a\nb\n", None) == [b"a\nb\n"]
    assert batching.split_records(b"", "Line") == []
    with pytest.raises(batching.BatchError, match="RecordIO"):
        batching.split_records(b"x", "RecordIO")


def test_multirecord_packs_up_to_the_limit() -> None:
    rec = b"x" * (300 * 1024 - 1) + b"\n"  # 300 KiB records: 3 fit in 1 MiB, not 4
    out = list(batching.batches([rec] * 10, "MultiRecord", 1))
    assert [len(b) // len(rec) for b in out] == [3, 3, 3, 1]
    assert b"".join(out) == rec * 10  # order and bytes kept
    assert list(batching.batches([rec] * 3, "SingleRecord", 1)) == [rec] * 3
    exact = b"y" * (batching.MIB - 1) + b"\n"  # exactly 1 MiB fits alone
    assert list(batching.batches([exact, b"z\n"], "MultiRecord", 1)) == [exact, b"z\n"]
    with pytest.raises(batching.BatchError, match="exceeds MaxPayloadInMB=1"):
        list(batching.batches([exact + b"!"], "MultiRecord", 1))
    assert len(list(batching.batches([rec] * 10, "MultiRecord", 0))) == 1  # 0 = unlimited


def test_assemble_and_strategy_spellings() -> None:
    assert batching.assemble([b"1\n2\n", b"3"], "Line") == b"1\n2\n3\n"
    assert batching.assemble([b"1\n2\n", b"3"], None) == b"1\n2\n3"
    assert batching.normalize_strategy("MULTI_RECORD") == "MultiRecord"
    assert batching.normalize_strategy("SingleRecord") == "SingleRecord"
    assert batching.normalize_strategy("single_record") == "SingleRecord"
