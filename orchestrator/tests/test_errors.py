"""Errors a user can act on (issue 14, item 6): one ``error:`` line naming the step or file and
what to do, exit code 2, no traceback unless ``--debug``, no container left behind.

The CLI runs in-process here (its own parser and error handling; pytest captures the console).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orch_helpers import ROOT

from rosetta_orchestrator.cli import main
from sagemaker_rosetta.containers import RUN_ID
from sagemaker_rosetta.dockerapi import client

ECHO = "rosetta-test/echo:latest"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["pipeline", *args])
    out = capsys.readouterr()
    return code, out.err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def our_containers() -> set[str]:
    """This process's managed containers (names carry the creating PID): the other xdist worker's
    tests, and servers this worker keeps for other modules, are not this test's to count."""
    mine = f"-{os.getpid()}-"
    return {c.name for c in client().containers.list(all=True, filters={"label": f"io.rosetta.managed={RUN_ID}"})
            if mine in c.name}


@pytest.fixture
def no_new_containers() -> Iterator[None]:
    """The test leaves no container behind (a refused run starts none; a failed one removes its own)."""
    before = our_containers()
    yield
    assert our_containers() - before == set()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_exception_in_the_pipeline_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path / "broken.py", "from rosetta_orchestrator import Pipeline\n\n\ndef pipeline():\n"
                                         "    p = Pipeline('broken')\n    raise RuntimeError('no data for 2026')\n")
    code, err = cli(capsys, "definition", str(file))
    assert code == 2
    assert one_error(err) == ("error: broken.py:6: RuntimeError: no data for 2026 (fix the pipeline file; "
                              "--debug shows the traceback)")
    code, err = cli(capsys, "definition", str(file), "--debug")
    assert code == 2 and "Traceback" in err and "broken.py\", line 6" in err


def test_upload_paths_resolve_against_the_pipeline_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project"
    write(folder / "data" / "x.csv", "1\n")
    file = write(folder / "pipe.py", "from rosetta_orchestrator import Pipeline\n\n\ndef pipeline():\n"
                                     "    p = Pipeline('uploads', bucket='b')\n"
                                     "    p.processing('Use', image='img', entrypoint=['true'], "
                                     "inputs={'d': p.upload('data/x.csv')})\n    return p\n")
    monkeypatch.chdir(tmp_path)  # not the pipeline's folder
    code, _ = cli(capsys, "definition", str(file), "-o", str(tmp_path / "d.json"))
    assert code == 0
    uri = json.loads((tmp_path / "d.json").read_text())["Steps"][0]["Arguments"]["ProcessingInputs"][0]
    assert uri["S3Input"]["S3Uri"].startswith("s3://b/uploads/assets/x-") and uri["S3Input"]["S3Uri"].endswith("/x.csv")
    file.write_text(file.read_text().replace("data/x.csv", "data/missing.csv"))
    code, err = cli(capsys, "definition", str(file))
    assert code == 2
    assert one_error(err) == (
        f"error: pipe.py:6: FileNotFoundError: p.upload('data/missing.csv'): {folder}/data/missing.csv does not "
        f"exist (relative paths are taken from the pipeline file's folder {folder}) (fix the pipeline file; "
        "--debug shows the traceback)")


def definition(*steps: dict[str, Any], params: list[dict[str, Any]] | None = None) -> str:
    return json.dumps({"Version": "2020-12-01", "Parameters": params or [], "Steps": list(steps)})


def processing(name: str, image: str = ECHO, **args: Any) -> dict[str, Any]:
    return {"Name": name, "Type": "Processing", "Arguments": {
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": ["true"]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 30}}, **args}}


@pytest.mark.parametrize(("text", "expected"), [
    ('{"Version": "2020-12-01"}', "error: bad.json is not a pipeline definition: expected an object with "
                                  "\"Version\", \"Parameters\" and \"Steps\" (or describe-pipeline-definition output)"),
    ("{not json", "error: bad.json is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                  "(char 1)"),
    (definition({**processing("A"), "DependsOn": ["B"]}, {**processing("B"), "DependsOn": ["A"]}),
     "error: dependency cycle among steps A, B: remove a DependsOn or a reference between them"),
    (definition(processing("A"), processing("B", Environment={"X": {"Get": "Steps.A.ProcessingJobStatu"}})),
     "error: step B: Get Steps.A.ProcessingJobStatu: DescribeProcessingJob has no property 'ProcessingJobStatu' "
     "(did you mean ProcessingJobStatus?)"),
    (definition(processing("A"), {"Name": "Notify", "Type": "Lambda", "Arguments": {}},
                {"Name": "Wait", "Type": "Callback", "Arguments": {}}),
     "error: step type(s) the local runner does not run: Notify (Lambda), Wait (Callback) (it runs Training, "
     "Processing, Model, Transform, Tuning, Condition, Fail, RegisterModel); remove them or run on SageMaker"),
])
@pytest.mark.usefixtures("no_new_containers")
def test_bad_definitions(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str) -> None:
    file = write(tmp_path / "bad.json", text)
    code, err = cli(capsys, "run", str(file), "--store", str(tmp_path / "s3"), "--workdir", str(tmp_path / "runs"))
    assert code == 2 and one_error(err) == expected


def test_missing_inputs_and_images_are_listed_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             echo_image: str) -> None:
    inputs = [{"InputName": n, "S3Input": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/input/{n}",
                                           "S3DataType": "S3Prefix", "S3InputMode": "File"}}
              for n, uri in (("a", "s3://data/missing/a.csv"), ("b", {"Get": "Parameters.Where"}))]
    file = write(tmp_path / "p.json", definition(
        processing("Read", ProcessingInputs=inputs), processing("Other", image="rosetta-test/absent:1"),
        params=[{"Name": "Where", "Type": "String", "DefaultValue": "s3://data/also-missing/"}]))
    code, err = cli(capsys, "run", str(file), "--store", str(tmp_path / "s3"), "--workdir", str(tmp_path / "runs"))
    assert code == 2
    assert one_error(err) == "error: 2 S3 input(s) missing, 1 image(s) not on the local engine (nothing was started):"
    assert f"  - step Read input a: s3://data/missing/a.csv does not exist in file://{tmp_path}/s3" in err
    assert f"  - step Read input b: s3://data/also-missing/ does not exist in file://{tmp_path}/s3" in err
    assert ("  - image rosetta-test/absent:1 (steps Other) is not on the local engine, which never pulls: build it "
            "(rosetta build …) or docker pull/tag it") in err
    code, err = cli(capsys, "run", str(file), "--store", str(tmp_path / "s3"), "--param", "Nope=1")
    assert code == 2 and one_error(err) == "error: unknown parameter(s): Nope; declared: Where"


JSONGET_PIPELINE = '''
from rosetta_orchestrator import Pipeline
from rosetta_orchestrator import conditions as c


def pipeline():
    p = Pipeline("rosetta-jsonget-test", bucket="rosetta-test")
    script = "echo '{\\"metrics\\": {\\"rows\\": 3}}' > /opt/ml/processing/output/evaluation/OUT"
    write = p.processing("Evaluate", image="rosetta-test/echo:latest", outputs=["evaluation"],
                         entrypoint=["sh", "-c", script],
                         property_files={"evaluation": ("evaluation", "evaluation.json")})
    p.condition("Gate", conditions=[c.ge(write.json("evaluation", "PATH"), 1)], if_steps=[p.fail("Never", "x")])
    return p
'''


@pytest.mark.parametrize(("out", "path", "expected"), [
    ("other.json", "metrics.rows", "error: step Gate: JsonGet metrics.rows: cannot read s3://rosetta-test/"
     "rosetta-jsonget-test/runs/{id}/Evaluate/evaluation/evaluation.json: no object s3://rosetta-test/"
     "rosetta-jsonget-test/runs/{id}/Evaluate/evaluation/evaluation.json (property file evaluation: did the step "
     "write evaluation.json to its output 'evaluation'?)"),
    ("evaluation.json", "metrics.accuracy", "error: step Gate: JsonGet metrics.accuracy: no property 'accuracy' in "
     "s3://rosetta-test/rosetta-jsonget-test/runs/{id}/Evaluate/evaluation/evaluation.json (top-level keys: metrics)"),
])
@pytest.mark.usefixtures("no_new_containers")
def test_jsonget_errors_name_the_step(tmp_path: Path, capsys: pytest.CaptureFixture[str], echo_image: str,
                                      out: str, path: str, expected: str) -> None:
    file = write(tmp_path / "jsonget.py", JSONGET_PIPELINE.replace("OUT", out).replace("PATH", path))
    code, err = cli(capsys, "run", str(file), "--store", str(tmp_path / "s3"), "--workdir", str(tmp_path / "runs"))
    execution = next((tmp_path / "runs").glob("*/result.json")).parent.name
    assert code == 2, err
    assert one_error(err) == expected.format(id=execution)


def test_placeholder_role_is_refused_on_upsert(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "upsert", str(ROOT / "examples" / "iris" / "pipeline.py"), "--no-upload")
    assert code == 2
    assert one_error(err) == ("error: the pipeline's role is Rosetta's placeholder "
                              "arn:aws:iam::123456789012:role/RosettaSageMakerRole, which does not exist in your "
                              "account: pass --role arn:aws:iam::<account>:role/<SageMaker execution role> or "
                              "Pipeline(role=...)")
