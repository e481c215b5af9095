"""Rosetta images also run under AWS's own local mode (the SDK's ``LocalPipelineSession``).

Needs Debian's docker-compose 1.29.2: installed here if missing (root on Debian, like CI).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from orch_helpers import ROOT, apt_install
from sdk_local_mode import remove_leftovers, run_sdk_local

pytestmark = pytest.mark.docker
DATA = ROOT / "examples" / "iris" / "data"
#: one image per runtime, each with hyperparameters of its own model.py / model.R / model.jl
IMAGES = {
    "rosetta-example/iris-python:latest": {"n_estimators": "20", "target": "species"},
    "rosetta-example/iris-r:latest": {"ntree": "50", "target": "species"},
    "rosetta-example/iris-julia:latest": {"epochs": "300", "target": "species"},
}


@pytest.mark.parametrize("image", list(IMAGES))
def test_rosetta_image_under_sdk_local_pipeline(tmp_path: Path, image: str) -> None:
    if not shutil.which("docker-compose"):
        apt_install("docker-compose")
    from rosetta_orchestrator.local.container import image_present

    assert image_present(image), f"{image} missing: CI builds the example images before the tests"
    (tmp_path / "train").mkdir()
    shutil.copy(DATA / "train.csv", tmp_path / "train")
    (tmp_path / "batch").mkdir()
    shutil.copy(DATA / "test_features.csv", tmp_path / "batch")
    try:
        result = run_sdk_local(image, train_dir=tmp_path / "train", batch_dir=tmp_path / "batch",
                               out_dir=tmp_path / "out", work=tmp_path / "work", hyperparameters=IMAGES[image])
    finally:
        remove_leftovers()
    assert result["status"] == "Succeeded", result
    assert result["steps"] == {"Train": "Succeeded", "Model": "Succeeded", "Transform": "Succeeded"}
    # SDK local mode writes "\n" after every response, even one ending in "\n": one blank line here
    # (Rosetta's runner does not add a newline to a response that has one, B-10)
    text = (tmp_path / "out" / "batch" / "test_features.csv.out").read_text()
    predictions = [line for line in text.splitlines() if line]
    truth = [line.rsplit(",", 1)[1] for line in (DATA / "test.csv").read_text().splitlines()[1:]]
    assert len(predictions) == 30 and set(predictions) <= {"setosa", "versicolor", "virginica"}
    assert sum(p == t for p, t in zip(predictions, truth, strict=True)) >= 25
