"""The README's main job end to end, offline, with the real example images (CI builds them first;
a missing image fails this test, it never skips)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from orch_helpers import ROOT, rosetta

pytestmark = pytest.mark.docker
IRIS = ROOT / "examples" / "iris" / "pipeline.py"


def test_iris_pipeline_runs_locally(tmp_path: Path) -> None:
    res = rosetta("run", str(IRIS), "--local", "--store", str(tmp_path / "s3"), "--workdir",
                  str(tmp_path / "runs"), timeout=1200)
    assert res.returncode == 0, res.stderr[-6000:]
    saved = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert saved["status"] == "Succeeded"
    assert {n: s["status"] for n, s in saved["steps"].items()} == dict.fromkeys(
        ["Split", "TrainPython", "ModelPython", "TransformPython", "TrainR", "ModelR", "TransformR",
         "TrainJulia", "ModelJulia", "TransformJulia", "Evaluate"], "Succeeded")
    evaluate = saved["steps"]["Evaluate"]["properties"]["ProcessingOutputConfig"]["Outputs"][0]
    bucket_key = evaluate["S3Output"]["S3Uri"].removeprefix("s3://")
    scores = json.loads((tmp_path / "s3" / bucket_key / "evaluation.json").read_text())
    assert set(scores) == {"python", "r", "julia"}
    for runtime, s in scores.items():
        assert s["n"] == 30, runtime
        assert s["accuracy"] >= 0.8, (runtime, s)  # iris is easy: every language should get this
    # every transform produced one prediction per hold-out row
    for rt in ("Python", "R", "Julia"):
        out = saved["steps"][f"Transform{rt}"]["properties"]["TransformOutput"]["S3OutputPath"]
        lines = (tmp_path / "s3" / out.removeprefix("s3://") / "test_features.csv.out").read_text().splitlines()
        assert len(lines) == 30
    err = " ".join(res.stderr.split())
    assert "iris: one model per language (evaluated in R)" in err
    assert "[TrainJulia]" in err and "[Evaluate]" in err  # logs streamed with step prefixes
