"""Local runs with real containers (the tiny echo image): artifacts, failures, transform semantics."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from orch_helpers import HERE, rosetta

from rosetta_orchestrator import Pipeline
from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter, RunResult
from rosetta_orchestrator.local.store import LocalStore
from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker
REQUEST = re.compile(r"request records=(\d+) bytes=(\d+) accept=(\S+) content_type=(\S+) "
                     r"env_batch=(\S+) strategy=(\S+)")


def run(p: Pipeline, tmp: Path, **params: str) -> tuple[RunResult, QuietReporter]:
    reporter = QuietReporter()
    result = execute(p, store=LocalStore(tmp / "s3"), workdir=tmp / "runs", parameters=params,
                     reporter=reporter, max_parallel=8)
    return result, reporter


def requests(reporter: QuietReporter, step: str) -> list[tuple[int, int, str, str, str, str]]:
    out = []
    for line in reporter.lines.get(step, []):
        m = REQUEST.search(line)
        if m:
            n, b, accept, ctype, batch, strategy = m.groups()
            out.append((int(n), int(b), accept, ctype, batch, strategy))
    return out


def local(result: RunResult, uri: str) -> Path:
    store = result.store
    assert isinstance(store, LocalStore)
    return Path(store.path(uri))


def our_containers() -> list[str]:
    names = subprocess.run([docker(), "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                           check=True).stdout.split()
    steps = ("Prepare", "Train", "Model", "Transform", "Check", "TMulti", "TSingle", "TWhole", "TAccept",
             "TExecParams", "TPoison", "THeader")
    return [n for n in names if any(n.startswith(f"rosetta-{s}-") for s in steps)]


def test_echo_pipeline_end_to_end(echo_image: str, tmp_path: Path) -> None:
    from orch_helpers import load_echo

    result, reporter = run(load_echo(), tmp_path, Prefix="yo", Lines="4")
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    train = result.steps["Train"].properties
    model_tar = local(result, train["ModelArtifacts"]["S3ModelArtifacts"])
    assert model_tar.name == "model.tar.gz" and f"/{train['TrainingJobName']}/output/" in str(model_tar)
    with tarfile.open(model_tar) as tar:  # the model dir's contents, not the dir itself (T-14)
        assert sorted(tar.getnames()) == ["model.json", "sub", "sub/note.txt"]
        model = json.loads(tar.extractfile("model.json").read())  # type: ignore[union-attr]
    assert model == {"prefix": "yo", "repeat": 1, "rows": 4}  # parameters reached the hyperparameters
    # through the MetricDefinition that metrics=["rows"] declared (T-20)
    assert [(m["MetricName"], m["Value"]) for m in train["FinalMetricDataList"]] == [("rows", 4.0)]
    out = local(result, result.steps["Transform"].properties["TransformOutput"]["S3OutputPath"])
    assert (out / "a.csv.out").read_text() == "".join(f"yo:a{i}\n" for i in range(4))
    assert (out / "b.csv.out").read_text() == "".join(f"yo:b{i}\n" for i in range(4))
    check = result.steps["Check"].properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert json.loads((local(result, check) / "summary.json").read_text()) == {"a.csv.out": 4, "b.csv.out": 4}
    assert any("training echo model prefix=yo" in line for line in reporter.lines["Train"])
    # B-06: no Accept header when TransformOutput has none; B-02: batch env set
    assert requests(reporter, "Transform") == [(4, 12, "None", "text/csv", "true", "MULTI_RECORD")] * 2
    assert our_containers() == []


def test_failing_step_reaches_the_user(echo_image: str, tmp_path: Path) -> None:
    """Through the CLI: the failure file's reason, the exit code and the step prefix are shown."""
    res = rosetta("run", str(HERE / "pipelines" / "echo.py"), "--local", "--param", "Repeat=abc",
                  "--store", str(tmp_path / "s3"), "--workdir", str(tmp_path / "runs"))
    assert res.returncode == 1, res.stderr[-3000:]
    err = " ".join(res.stderr.split())  # rich wraps long lines
    assert "[Train] HyperparameterError: repeat: expected an integer, got 'abc'" in err
    assert "step Train failed" in err and "exit code: 1" in err
    assert "reason: HyperparameterError: repeat: expected an integer, got 'abc'" in err
    # not a terminal: a plain full-width table, every column kept (issue 13)
    assert re.search(r"^Transform\s+Transform\s+other\s+not started$", res.stderr, re.M)
    assert re.search(r"^Train\s+Training\s+other\s+Failed\s+[\d.]+\s+rosetta-test/echo:latest$", res.stderr, re.M)
    saved = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert saved["steps"]["Train"]["exit_code"] == 1 and saved["status"] == "Failed"
    assert our_containers() == []


@pytest.fixture(scope="module")
def transforms(echo_image: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, QuietReporter]:
    """One pipeline, one model, six transform steps with different settings, run in parallel."""
    tmp = tmp_path_factory.mktemp("transforms")
    data = tmp / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "t.csv").write_text("1\n")
    big, multi = data / "multi", data / "poison"
    big.mkdir()
    multi.mkdir()
    record = "r{:05d}," + "x" * 1000 + "\n"  # 1008 bytes per record
    (big / "big.csv").write_text("".join(record.format(i) for i in range(2500)))  # ~2.4 MiB
    (big / "small.csv").write_text("s0\ns1\ns2")  # no final newline
    (multi / "good.csv").write_text("g0\ng1\n")
    (multi / "bad.csv").write_text("ok\nPOISON\n")
    lines = data / "lines"
    lines.mkdir()
    (lines / "a.csv").write_text("".join(f"a{i}\n" for i in range(7)))
    headered = data / "headered"
    headered.mkdir()
    (headered / "hdr.csv").write_text(HEADER + "".join(NUMERIC_ROW.format(i) for i in range(2500)))  # ~2.4 MiB

    p = Pipeline("rosetta-transform-test", bucket="rosetta-test")
    train = p.training("Train", image=echo_image, inputs={"train": p.upload(data / "train")},
                       hyperparameters={"prefix": "p"})
    m = p.model("Model", model_data=train.model_data, trained_by=train)
    offered = json.dumps({"BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 1, "MaxConcurrentTransforms": 2})
    m_exec = p.model("ModelExecParams", model_data=train.model_data, trained_by=train,
                     env={"ECHO_EXECUTION_PARAMETERS": offered})
    p.transform("TMulti", model=m, data=p.upload(big), strategy="MultiRecord", max_payload_mb=1,
                assemble_with="Line")
    p.transform("TSingle", model=m, data=p.upload(lines), strategy="SingleRecord", max_concurrent=4,
                assemble_with=None)
    p.transform("TWhole", model=m, data=p.upload(lines, "lines-whole"), split_type="None", assemble_with=None)
    p.transform("TAccept", model=m, data=p.upload(lines, "lines-accept"), accept="text/csv")
    p.transform("TExecParams", model=m_exec, data=p.upload(lines, "lines-exec"), strategy=None)
    p.transform("TPoison", model=m, data=p.upload(multi))
    # issue 13: a header row in the first payload only; a correct runtime (D1) and the defect
    m_header = p.model("ModelHeader", model_data=train.model_data, trained_by=train,
                       env={"ROSETTA_CSV_HEADER": "true"})
    m_bug = p.model("ModelHeaderBug", model_data=train.model_data, trained_by=train,
                    env={"ROSETTA_CSV_HEADER": "true", "ECHO_HEADER_BUG": "1"})
    hdr = p.upload(headered)
    p.transform("THeader", model=m_header, data=hdr, max_payload_mb=1)
    p.transform("THeaderBug", model=m_bug, data=hdr, max_payload_mb=1)
    p.transform("THeaderBugJson", model=m_bug, data=hdr, max_payload_mb=1, accept="application/json")
    p.transform("THeaderBugUnknown", model=m_bug, data=hdr, max_payload_mb=1, accept="application/x-echo")
    return run(p, tmp)


HEADER = "id,value\n"
NUMERIC_ROW = "{:05d}," + "7" * 1000 + "\n"  # 1007 bytes, every field a number


def header_requests() -> list[tuple[int, int, int]]:
    """(first byte, last byte, data records) of each 1 MiB request of hdr.csv, by arithmetic."""
    row, mib, total = len(NUMERIC_ROW.format(0)), 1024 * 1024, 2500
    first = (mib - len(HEADER)) // row
    out, start, left = [], 0, total
    n = first
    while left:
        n = min(n, left)
        size = n * row + (len(HEADER) if not out else 0)
        out.append((start, start + size - 1, n))
        start, left, n = start + size, left - n, mib // row
    return out


def test_multirecord_splits_at_max_payload(transforms: tuple[RunResult, QuietReporter]) -> None:
    result, reporter = transforms
    assert result.steps["TMulti"].status == "Succeeded", result.steps["TMulti"].reason
    reqs = requests(reporter, "TMulti")
    per_request = (1024 * 1024) // 1008  # whole 1008-byte records within 1 MiB
    big = [r for r in reqs if r[0] > 3]
    assert [r[0] for r in big] == [per_request, per_request, 2500 - 2 * per_request]
    assert all(b <= 1024 * 1024 for _, b, *_ in reqs)
    assert {r[5] for r in reqs} == {"MULTI_RECORD"}
    out = local(result, result.steps["TMulti"].properties["TransformOutput"]["S3OutputPath"])
    got = (out / "big.csv.out").read_text().splitlines()
    assert got == [f"p:r{i:05d}," + "x" * 1000 for i in range(2500)]  # every record, in order
    # AssembleWith Line: one newline after a response that lacks it, never blank lines
    assert (out / "small.csv.out").read_text() == "p:s0\np:s1\np:s2\n"


def test_singlerecord_concurrent_keeps_order(transforms: tuple[RunResult, QuietReporter]) -> None:
    result, reporter = transforms
    reqs = requests(reporter, "TSingle")
    assert [r[0] for r in reqs] == [1] * 7 and {r[5] for r in reqs} == {"SINGLE_RECORD"}
    out = local(result, result.steps["TSingle"].properties["TransformOutput"]["S3OutputPath"])
    assert (out / "a.csv.out").read_text() == "".join(f"p:a{i}\n" for i in range(7))
    assert result.steps["TSingle"].properties["MaxConcurrentTransforms"] == 4


def test_split_none_sends_whole_file(transforms: tuple[RunResult, QuietReporter]) -> None:
    _, reporter = transforms
    assert [r[0] for r in requests(reporter, "TWhole")] == [7]


def test_accept_only_when_set(transforms: tuple[RunResult, QuietReporter]) -> None:
    _, reporter = transforms
    assert {r[2] for r in requests(reporter, "TAccept")} == {"text/csv"}
    assert {r[2] for r in requests(reporter, "TWhole")} == {"None"}


def test_execution_parameters_fill_unset_values(transforms: tuple[RunResult, QuietReporter]) -> None:
    """B-03: the container's SINGLE_RECORD answer applies when the job sets no strategy; the env
    var stays unset because the job did not set it (B-02)."""
    result, reporter = transforms
    props: dict[str, Any] = result.steps["TExecParams"].properties
    assert props["BatchStrategy"] == "SingleRecord" and props["MaxConcurrentTransforms"] == 2
    reqs = requests(reporter, "TExecParams")
    assert [r[0] for r in reqs] == [1] * 7 and {r[5] for r in reqs} == {"None"}


def test_bad_record_fails_its_file_only(transforms: tuple[RunResult, QuietReporter]) -> None:
    result, _ = transforms
    poison = result.steps["TPoison"]
    assert poison.status == "Failed" and result.status == "Failed"
    assert poison.reason.startswith("1 input file(s) failed: bad.csv: HTTP 400: row 1: 'POISON'")
    out = local(result, f"s3://rosetta-test/rosetta-transform-test/runs/{result.execution_id}/TPoison")
    assert (out / "good.csv.out").read_text() == "p:g0\np:g1\n" and not (out / "bad.csv.out").exists()
    assert our_containers() == []


def test_headered_file_split_across_payloads(transforms: tuple[RunResult, QuietReporter]) -> None:
    """A runtime that drops the header only where it is one: one output per data row, in order."""
    result, reporter = transforms
    assert result.steps["THeader"].status == "Succeeded", result.steps["THeader"].reason
    out = local(result, result.steps["THeader"].properties["TransformOutput"]["S3OutputPath"])
    assert (out / "hdr.csv.out").read_text().splitlines() == [
        "p:" + NUMERIC_ROW.format(i).strip() for i in range(2500)]
    assert len(requests(reporter, "THeader")) == len(header_requests()) == 3
    assert result.steps["THeader"].properties["Records"] == 2500  # the header is not a record


@pytest.mark.parametrize(("step", "kind"), [("THeaderBug", "text/csv"), ("THeaderBugJson", "application/json")])
def test_lost_row_fails_the_file(transforms: tuple[RunResult, QuietReporter], step: str, kind: str) -> None:
    """Issue 13: a runtime that drops the first line of every payload loses one data row per later
    request. Before the check the step Succeeded with 2,498 outputs for 2,500 rows; now the file
    fails, naming the request's byte range and both counts, and no .out is written."""
    result, _ = transforms
    res = result.steps[step]
    start, end, sent = header_requests()[1]
    assert res.status == "Failed"
    assert res.reason == (f"1 input file(s) failed: hdr.csv: request 2/3 (bytes {start}-{end}) sent {sent} "
                          f"record(s) and got {sent - 1} back ({kind}); every record needs exactly one output, "
                          "in order (a data row taken for a header, or rows dropped?)")
    out = local(result, f"s3://rosetta-test/rosetta-transform-test/runs/{result.execution_id}/{step}")
    assert not (out / "hdr.csv.out").exists()


def test_uncountable_type_is_said_once(transforms: tuple[RunResult, QuietReporter]) -> None:
    """A response type the runner cannot count is not checked, and the log says so once."""
    result, reporter = transforms
    assert result.steps["THeaderBugUnknown"].status == "Succeeded"
    notes = [line for line in reporter.lines["THeaderBugUnknown"] if "are not counted" in line]
    assert notes == ["[rosetta] responses of type application/x-echo are not counted: one output per input "
                     "record is not checked for them"]


def test_s3_compatible_endpoint(echo_image: str, tmp_path: Path) -> None:
    """Artifacts through an S3 API (a moto server on 127.0.0.1 standing in for MinIO/S3)."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer
    from orch_helpers import load_echo

    from rosetta_orchestrator.local.store import S3Store

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        result = execute(load_echo(), store=S3Store(url), workdir=tmp_path / "runs", parameters={"Lines": "3"},
                         reporter=QuietReporter())
        assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        out = result.steps["Transform"].properties["TransformOutput"]["S3OutputPath"]
        key = out.removeprefix("s3://rosetta-test/") + "/a.csv.out"
        body = s3.get_object(Bucket="rosetta-test", Key=key)["Body"].read().decode()
        assert body == "hi:a0\nhi:a1\nhi:a2\n"
        model = result.steps["Train"].properties["ModelArtifacts"]["S3ModelArtifacts"]
        s3.head_object(Bucket="rosetta-test", Key=model.removeprefix("s3://rosetta-test/"))
    finally:
        server.stop()


def test_users_own_sdk_step(echo_image: str, tmp_path: Path) -> None:
    """A step built with the SDK directly (Processor + ProcessingStep) joins a Rosetta pipeline,
    references a Rosetta step, and runs locally like the others."""
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.mlops.workflow.steps import ProcessingStep

    p = Pipeline("rosetta-own-step-test", bucket="rosetta-test")
    prep = p.processing("Prepare", image=echo_image, code=HERE / "pipelines" / "prepare.py",
                        outputs=["train", "batch"])
    processor = Processor(role=p.role, image_uri=echo_image, instance_count=1, instance_type="ml.m5.large",
                          entrypoint=["sh", "-c", "cat /opt/ml/processing/in/a.csv | wc -l > /opt/ml/processing/out/n"],
                          sagemaker_session=p.session)
    step = ProcessingStep(name="Count", step_args=processor.run(
        inputs=[ProcessingInput(input_name="in", s3_input=ProcessingS3Input(
            s3_uri=prep.output("batch"), local_path="/opt/ml/processing/in", s3_data_type="S3Prefix",
            s3_input_mode="File"))],
        outputs=[ProcessingOutput(output_name="out", s3_output=ProcessingS3Output(
            s3_uri="s3://rosetta-test/own-step/out", local_path="/opt/ml/processing/out",
            s3_upload_mode="EndOfJob"))]))
    handle = p.add(step, image=echo_image, runtime="shell")
    assert p.runtimes() == {"Prepare": "other", "Count": "shell"} and handle.step is step
    result, _ = run(p, tmp_path)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    assert (local(result, "s3://rosetta-test/own-step/out") / "n").read_text().strip() == "5"
