"""``rosetta init``: the generated project is complete, consistent with its data, and conformant unedited.

Unit tests (no Docker) check every language × task; the ``docker`` test does exactly what a user
does (init → ``docker build`` → ``rosetta conform``, MUST profile) once per language, covering
both tasks across the three languages.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from rosetta_conformance import Status, load_expected_failures, load_manifest, run_suite, write_reports
from rosetta_runtime import hyperparameters as rt_hyperparameters
from sagemaker_rosetta import cli, engine, images
from sagemaker_rosetta.scaffold import LANGUAGES, TASKS, init_project
from sagemaker_rosetta.scaffold.project import image_name, render

ROOT = Path(__file__).resolve().parents[1]
COMBOS = [(lang, task) for lang in LANGUAGES for task in TASKS]


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return [r for r in csv.reader(f) if r]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every language × task, rendered once for the unit tests."""
    base = tmp_path_factory.mktemp("projects")
    return {(lang, task): init_project(lang, base / f"{lang}-{task}", task=task).root for lang, task in COMBOS}


# -- unit tests: no Docker -------------------------------------------------------------------------


def test_refuses_a_non_empty_folder_with_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["init", "python", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--force" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_force_writes_over_a_non_empty_folder_and_keeps_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "model.py").write_text("old")
    assert cli.main(["init", "python", str(tmp_path), "--task", "regression", "--force"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert "GradientBoostingRegressor" in (tmp_path / "model.py").read_text()


def test_refuses_a_file_and_an_unknown_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    assert cli.main(["init", "r", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(SystemExit):  # argparse: choices
        cli.main(["init", "r", str(tmp_path / "new"), "--task", "clustering"])
    assert not (tmp_path / "new").exists()


def test_cli_lists_the_files_and_ends_with_the_next_two_commands(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "My Model"
    assert cli.main(["init", "julia", str(folder), "--task", "regression"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-3] == "next:"
    build, conform = (shlex.split(line) for line in out[-2:])
    assert build == ["docker", "build", "-t", "my-model:latest", str(folder)]
    assert conform == ["rosetta", "conform", "my-model:latest", "-m", str(folder / "conformance.toml")]
    assert cli.build_parser().parse_args(conform[1:]).manifest == folder / "conformance.toml"  # flags exist
    assert "  model.jl" in out and "  .github/workflows/rosetta.yml" in out


def test_image_names_are_valid_docker_references(tmp_path: Path) -> None:
    assert image_name(tmp_path / "My Model") == "my-model:latest"
    assert image_name(tmp_path / "churn_v2") == "churn_v2:latest"
    assert image_name(tmp_path / "__") == "my-model:latest"
    assert image_name(tmp_path / "A..b--c") == "a-b-c:latest"


def test_render_fails_on_an_unknown_value_and_leaves_github_expressions() -> None:
    assert render("x={{a}} ${{ vars.X }} ${{b}}", {"a": "1"}) == "x=1 ${{ vars.X }} ${{b}}"
    with pytest.raises(KeyError, match="missing"):
        render("{{missing}}", {})


@pytest.mark.parametrize(("lang", "task"), COMBOS)
def test_every_file_renders(projects: dict[tuple[str, str], Path], lang: str, task: str) -> None:
    root = projects[(lang, task)]
    spec = LANGUAGES[lang]
    expected = {spec.model_file, "Dockerfile", ".dockerignore", ".gitignore", "conformance.toml", "README.md",
                "pipeline.py", ".github/workflows/rosetta.yml", "data/train.csv", "data/test_features.csv"}
    if spec.expected_failures:
        expected.add("expected-failures.toml")
    assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == expected
    for rel in expected:
        text = (root / rel).read_text()
        assert not re.search(r"(?<!\$)\{\{", text), f"{rel}: unrendered value"
    # FROM the runtime image of the images table (a build argument, so CI can use a registry copy)
    dockerfile = (root / "Dockerfile").read_text()
    assert f"ARG RUNTIME_IMAGE={images.IMAGES[spec.runtime].tag}\nFROM ${{RUNTIME_IMAGE}}\n" in dockerfile
    assert f"COPY {spec.model_file} /opt/program/{spec.model_file}" in dockerfile
    # the model's declared default target is the data's target column
    target = rows(root / "data" / "train.csv")[0][-1]
    assert re.search(rf"target\s*(:\s*str\s*)?=\s*\"{target}\"", (root / spec.model_file).read_text())
    compile((root / "pipeline.py").read_text(), "pipeline.py", "exec")
    if lang == "python":
        compile((root / "model.py").read_text(), "model.py", "exec")


@pytest.mark.parametrize(("lang", "task"), COMBOS)
def test_manifest_matches_the_data(projects: dict[tuple[str, str], Path], lang: str, task: str) -> None:
    root = projects[(lang, task)]
    manifest = load_manifest(root / "conformance.toml")  # the suite's own reader
    train = rows(root / "data" / "train.csv")
    header, body = train[0], train[1:]
    assert len(body) >= 200 and all(len(r) == len(header) for r in body)
    assert manifest.training is not None
    assert manifest.training.hyperparameters["target"] == header[-1]
    assert manifest.training.channels["train"] == (root / "data" / "train.csv").resolve()
    features = rows(root / "data" / "test_features.csv")
    assert all(len(r) == len(header) - 1 for r in features)  # no target column, no header
    assert np.isfinite([[float(v) for v in r] for r in features]).all()  # numeric
    by_type = {p.content_type: p for p in manifest.serving.payloads}
    assert set(by_type) == {"text/csv", "application/json", "application/jsonlines"}
    csv_payload = by_type["text/csv"]
    assert csv_payload.records == len(features) == len(csv_payload.body.decode().splitlines())
    assert csv_payload.header == ",".join(header[:-1]).encode()  # B-13 sends the rows under this header
    json_rows = json.loads(by_type["application/json"].body)
    assert by_type["application/json"].records == len(json_rows)
    assert json_rows == [[float(v) for v in r] for r in features[: len(json_rows)]]
    lines = by_type["application/jsonlines"].body.decode().splitlines()
    assert by_type["application/jsonlines"].records == len(lines) == 2
    assert manifest.image == image_name(root)
    if LANGUAGES[lang].expected_failures:
        assert set(load_expected_failures(manifest.expected_failures)) == set(LANGUAGES[lang].expected_failures)


def test_sample_data_is_deterministic(tmp_path: Path) -> None:
    a = init_project("r", tmp_path / "a", task="regression")
    b = init_project("r", tmp_path / "b", task="regression")
    for rel in ("data/train.csv", "data/test_features.csv"):
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes()
    classes = {r[-1] for r in rows(init_project("julia", tmp_path / "c").root / "data" / "train.csv")[1:]}
    assert len(classes) == 3


def test_workflow_builds_conforms_and_uploads_the_junit_report(projects: dict[tuple[str, str], Path]) -> None:
    root = projects[("r", "classification")]
    workflow = yaml.safe_load((root / ".github" / "workflows" / "rosetta.yml").read_text())
    steps = workflow["jobs"]["conform"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert "pip install sagemaker-rosetta" in runs
    assert any(r.startswith("docker build ") and '-t "$IMAGE"' in r for r in runs)
    conform = shlex.split(next(r for r in runs if r.startswith("rosetta conform")))
    args = cli.build_parser().parse_args(conform[1:])  # every flag exists in the real CLI
    assert args.manifest == Path("conformance.toml") and args.output == Path("out/conformance")
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"].rstrip("/") == "out/conformance"
    assert "rosetta/r:latest" in workflow["jobs"]["conform"]["env"]["RUNTIME_IMAGE"]


def _load_model(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task", TASKS)
def test_python_model_trains_in_process_with_both_encodings(projects: dict[tuple[str, str], Path],
                                                            task: str) -> None:
    """The generated model.py with the runtime's own hyperparameter parser, on the sample data."""
    root = projects[("python", task)]
    model = _load_model(root / "model.py", f"scaffold_model_{task}")
    hps = tomllib.loads((root / "conformance.toml").read_text())["training"]["hyperparameters"]
    declared = model.Hyperparameters
    as_str = rt_hyperparameters.parse({k: str(v) for k, v in hps.items()}, declared)
    as_json = rt_hyperparameters.parse({k: json.dumps(v) for k, v in hps.items()}, declared)
    assert as_str == as_json and dataclasses.asdict(as_str) == {**dataclasses.asdict(declared()), **hps}
    fitted = model.fit({"train": pd.read_csv(root / "data" / "train.csv")}, as_str)
    X = np.loadtxt(root / "data" / "test_features.csv", delimiter=",", ndmin=2)
    predictions = model.predict(fitted, X)
    assert len(predictions) == len(X)
    if task == "classification":
        assert set(predictions) <= {"alpha", "beta", "gamma"} and len(set(predictions)) == 3
    else:  # the sample response is linear with unit noise: a usable model is far better than the mean
        train = pd.read_csv(root / "data" / "train.csv")
        fit_err = np.abs(model.predict(fitted, train.drop(columns=["y"]).to_numpy(float)) - train["y"]).mean()
        assert fit_err < 0.5 * np.abs(train["y"] - train["y"].mean()).mean()


# -- the real loop: init → docker build → rosetta conform ------------------------------------------

#: one image per language; both tasks covered across the languages
LOOP = [("python", "regression"), ("r", "classification"), ("julia", "regression")]


@pytest.fixture
def image_tags() -> Iterator[list[str]]:
    """Tags the test builds; removed afterwards, pass or fail."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        subprocess.run([engine.docker(), "rmi", "-f", tag], capture_output=True, check=False)


@pytest.mark.docker
@pytest.mark.parametrize(("lang", "task"), LOOP, ids=[f"{lang}-{task}" for lang, task in LOOP])
def test_init_build_conform(tmp_path: Path, image_tags: list[str], lang: str, task: str) -> None:
    runtime_image = images.IMAGES[LANGUAGES[lang].runtime].tag
    assert engine.image_exists(runtime_image), f"{runtime_image} is not built: run `rosetta build {lang}`"
    folder = tmp_path / f"{lang}-{task}"
    assert cli.main(["init", lang, str(folder), "--task", task]) == 0
    tag = f"rosetta-scaffold-test/{lang}-{task}:latest"
    image_tags.append(tag)
    images.docker_build(tag, folder / "Dockerfile", folder)
    manifest = load_manifest(folder / "conformance.toml")
    report = run_suite(tag, manifest, profiles=["must"], expected=load_expected_failures(manifest.expected_failures))
    write_reports(report, ROOT / "out" / "conformance")
    print(f"{tag}: MUST profile in {report.seconds:.1f} s")
    problems = [f"{r.clause} {r.status.value}: {r.blocked_by or ''} {r.detail[:300]} | sent {r.sent[:150]} "
                f"| received {r.received[:300]}" for r in report.results if not r.passed]
    assert report.ok, "\n".join(problems)
    assert not report.by_status(Status.SKIP), "a MUST clause was skipped: the generated manifest is incomplete"
    if lang == "python":  # the README's pipeline (train → model → transform), once: the same image either way
        store = tmp_path / "store"
        assert cli.main(["pipeline", "run", str(folder / "pipeline.py"), "--param", f"Image={tag}",
                         "--store", str(store), "--workdir", str(tmp_path / "work")]) == 0
        (out,) = store.rglob("test_features.csv.out")
        assert len(out.read_text().splitlines()) == len(rows(folder / "data" / "test_features.csv"))
